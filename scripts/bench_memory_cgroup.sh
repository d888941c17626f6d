#!/bin/bash
# bench_memory_cgroup.sh - Memoria exacta por contenedor vía cgroup, y la de los procesos del
# motor (Experimento 8).
# Uso: bash bench_memory_cgroup.sh [opciones de probe memory...]
# Escribe results/memory_cgroup.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== Memory cgroup ==="
bench_run memory_cgroup.csv -- memory --cgroup "$@"
