#!/bin/bash
# bench_scale.sh - Mide escalamiento con 10, 20 y 50 contenedores (Experimento 6).
# Uso: bash bench_scale.sh [opciones de probe scale...]   (p. ej. --counts 10,20,50,100)
# Escribe results/scale.csv (runtime,count,time_seconds,memory_mb).
source "$(dirname "$0")/bench_common.sh"
echo "=== Scaling Benchmark ==="
bench_run scale.csv -- scale "$@"
