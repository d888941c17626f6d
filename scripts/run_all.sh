#!/bin/bash
# run_all.sh - Corre todos los benchmarks (probe all) y deja los CSV del capítulo en results/,
# más el reporte (Markdown y HTML, en inglés y en español) de la corrida.
# Uso: bash run_all.sh [--quick]
source "$(dirname "$0")/bench_common.sh"
echo "=== Todos los benchmarks ==="
# A failed experiment is reported by probe (exit 1) and the others still ran: their CSV
# files are copied all the same.
run=$(probe_into_scratch "$(find_probe)" all "$@")
for csv in "$OUT_DIR/runs/$run"/*/*.csv; do
    name=$(basename "$csv")
    # Only the chapter's files; phases.csv and the like stay in the run folder.
    case "$name" in
        startup.csv | memory.csv | memory_cgroup.csv | cpu.csv | cpu_exec.csv | io.csv | scale.csv | nested.csv)
            as_root cat "$csv" > "$OUT_DIR/$name"
            echo "Resultados en $OUT_DIR/$name"
            ;;
    esac
done
echo "Reporte en $OUT_DIR/runs/$run/report.es.html (y report.en.html)"
