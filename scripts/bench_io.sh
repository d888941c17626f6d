#!/bin/bash
# bench_io.sh - Mide rendimiento de I/O por modo de almacenamiento, y si el sync llega al
# disco (Experimento 4).
# Uso: bash bench_io.sh [opciones de probe io...]
# Escribe results/io.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== Disk I/O Benchmark ==="
bench_run io.csv -- io "$@"
