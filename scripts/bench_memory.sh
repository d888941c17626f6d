#!/bin/bash
# bench_memory.sh - Mide consumo de memoria con free -m, y su ruido (Experimento 2).
# Uso: bash bench_memory.sh [opciones de probe memory...]
# Escribe results/memory.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== Memory Consumption ==="
bench_run memory.csv -- memory "$@"
