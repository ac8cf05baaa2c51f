#!/usr/bin/env bash
# The plug-and-play tables of issue 8 (benchmarks/RESULTS.md, "Plug-and-play"): one command per table,
# CBSD68 first 20 images, circular blur, one CPU thread, JSON + Markdown under benchmarks/results/.
#
#   benchmarks/run_pnp_tables.sh [TABLE...]      # TABLE: levin course inpaint50 inpaint80 sr2 sr4 speed
#
# Environment: DATA (default ../shared/data/CBSD68), LIMIT (default 20), PNP (the pnp method spec,
# default "pnp": its default denoiser and iterations), RESTOREKIT (default .venv/bin/restorekit),
# PYTHON (default .venv/bin/python). Run from the repository root.
set -euo pipefail

DATA=${DATA:-../shared/data/CBSD68}
LIMIT=${LIMIT:-20}
PNP=${PNP:-pnp}
RESTOREKIT=${RESTOREKIT:-.venv/bin/restorekit}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=benchmarks/results
mkdir -p "$OUT"

bench() {  # bench NAME ARGS...: one table, written as $OUT/pnp_NAME.{json,md}
    local name=$1
    shift
    echo "== pnp_$name: $RESTOREKIT bench $*" >&2
    "$RESTOREKIT" bench --data "$DATA" --limit "$LIMIT" --threads 1 --no-progress \
        --json "$OUT/pnp_$name.json" --markdown "$OUT/pnp_$name.md" "$@"
}

table() {
    case $1 in
        levin)     bench levin --task deblur --kernel levin:all --sigmas 0.01,0.03 \
                         --methods "$PNP,wiener:snr=auto,unsupervised-wiener" ;;
        course)    bench course --task deblur --kernel course --sigmas 0.01 --methods "$PNP,wiener+unet" ;;
        inpaint50) bench inpaint50 --task inpaint --mask random:0.5 --sigmas 0 --methods "$PNP,biharmonic" ;;
        inpaint80) bench inpaint80 --task inpaint --mask random:0.8 --sigmas 0 --methods "$PNP,biharmonic" ;;
        sr2)       bench sr2 --task superresolve --scale 2 --sigmas 0 --methods "$PNP,bicubic" ;;
        sr4)       bench sr4 --task superresolve --scale 4 --sigmas 0 --methods "$PNP,bicubic" ;;
        speed)     "$PYTHON" benchmarks/bench_pnp_speed.py --data "$DATA" --limit 5 --threads 1 \
                         --markdown "$OUT/pnp_speed.md" --json "$OUT/pnp_speed.json" ;;
        *)         echo "unknown table $1 (levin course inpaint50 inpaint80 sr2 sr4 speed)" >&2; exit 2 ;;
    esac
}

if [ $# -eq 0 ]; then
    set -- levin course inpaint50 inpaint80 sr2 sr4 speed
fi
for name in "$@"; do
    table "$name"
done
