# Sourced by scripts that need root for some steps: as root they run as they are (no sudo
# needed, none may be installed); for a user with sudo they go through sudo, keeping PATH so
# the user's cargo and toolchain stay found.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -E env "PATH=$PATH" "$@"
    else
        echo "$(basename "$0"): \`$*\` needs root: run as root, or install sudo" >&2
        exit 1
    fi
}
