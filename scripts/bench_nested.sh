#!/bin/bash
# bench_nested.sh - Contenedores anidados: Docker-in-Docker y Podman-in-Podman (Experimento 5).
# Uso: bash bench_nested.sh [opciones de probe nested...]
# Escribe results/nested.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== Nested Containers ==="
bench_run nested.csv -- nested --only exp5_dind,exp5_pinp "$@"
