#!/bin/bash
# bench_startup.sh - Mide latencia de arranque (Experimento 1).
# Uso: bash bench_startup.sh [REPS] [opciones de probe startup...]   (REPS por defecto: 10)
# Escribe results/startup.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
REPS=${1:-10}
echo "=== Startup Latency ($REPS repeticiones) ==="
bench_run startup.csv -- startup --reps "$REPS" "${@:2}"
