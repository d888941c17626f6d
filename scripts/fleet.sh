#!/usr/bin/env bash
# probe on every host of an Ansible inventory, and one fleet report comparing them.
#
# Usage: scripts/fleet.sh [-i INVENTORY] [--fleet-dir DIR] [ANSIBLE-PLAYBOOK ARGS...]
#   -i INVENTORY     hosts to measure, in the [fleet] group (default deploy/ansible/inventory.ini)
#   --fleet-dir DIR  where run folders and reports go (default results/fleet); running again
#                    with the same DIR fetches only what is missing
#   other arguments go to ansible-playbook (e.g. -e probe_profile=debug, -l guest)
# Installs ansible-core from the distribution's packages when ansible-playbook is missing.
# Exit status: 0 when every host sent a complete run; 2 when one did not (the report is still
# written, with the reason). See docs/fleet.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

INVENTORY=deploy/ansible/inventory.ini
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        -i) INVENTORY=${2:?-i needs an inventory file}; shift 2 ;;
        --fleet-dir) EXTRA+=(-e "fleet_dir=$(realpath -m "${2:?--fleet-dir needs a folder}")"); shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) EXTRA+=("$1"); shift ;;
    esac
done
[ -f "$INVENTORY" ] || { echo "fleet: no inventory at $INVENTORY: pass -i FILE (example: deploy/ansible/inventory.ini)" >&2; exit 1; }

if ! command -v ansible-playbook >/dev/null 2>&1; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    echo "fleet: installing ansible-core (apt-get install --no-install-recommends ansible-core)" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y --no-install-recommends ansible-core >&2 \
        || { as_root apt-get update >&2 && as_root apt-get install -y --no-install-recommends ansible-core >&2; } \
        || { echo "fleet: cannot install ansible-core: install it (apt-get install ansible-core) and retry" >&2; exit 1; }
fi

export ANSIBLE_CONFIG="$REPO/deploy/ansible/ansible.cfg"
exec ansible-playbook -i "$INVENTORY" "$REPO/deploy/ansible/fleet.yml" "${EXTRA[@]}"
