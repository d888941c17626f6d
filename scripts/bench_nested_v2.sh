#!/bin/bash
# bench_nested_v2.sh - 6 enfoques para contenedores anidados (Experimento 9).
# Uso: bash bench_nested_v2.sh [opciones de probe nested...]
# Escribe results/nested_v2.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== Nested Containers v2 ==="
bench_run nested.csv:nested_v2.csv -- nested \
    --only dind_privileged,socket_mount,dind_relaxed_security,pinp_basic,pinp_privileged,pinp_vfs "$@"
