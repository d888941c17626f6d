#!/bin/bash
# bench_cpu.sh - Mide overhead de CPU: el loop en un contenedor nuevo cada vez (Experimento 3).
# Uso: bash bench_cpu.sh [opciones de probe cpu...]
# Escribe results/cpu.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== CPU Benchmark ==="
bench_run cpu.csv -- cpu "$@"
