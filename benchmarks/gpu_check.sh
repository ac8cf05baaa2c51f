#!/usr/bin/env bash
# The GPU recipe: everything restorekit checks on a lent GPU, in one script, within about 9 minutes.
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--data DIR] [--train-seconds N] [--checkpoint PT] [--python PY]
#                                [--dry-run]
#
# On the GPU machine (the `device` tool's `run`, which copies this working tree there), e.g.:
#   bash benchmarks/gpu_check.sh --out "$OUT" --data .gpu_data
# Steps, each logged to DIR/NN-step.log, with DIR/summary.txt naming the card and each step's status:
#   1. the machine: nvidia-smi, the card's name, python and torch versions     (seconds)
#   2. build: the compiled core for the card (setup.py build_ext --inplace, TORCH_CUDA_ARCH_LIST from
#      the card), and the entry points (pip install --no-deps --no-build-isolation -e .)   (2-3 min)
#   3. the CUDA tests: pytest -m cuda (plus the compiled-op tests, which run on every device)  (1 min)
#   4. timings, CUDA against the same CPU side by side: benchmarks/gpu_bench.py (the fused
#      Linear+ReLU, the drunet prior, pnp, CBM3D) -> DIR/gpu_bench.json                         (1 min)
#   5. the prior's training continued with a larger batch on the GPU: `restorekit train drunet
#      --init-from benchmarks/training/drunet-color-deep/checkpoint.pt --batch-size 64 --device cuda`
#      (the shipped prior's run; --checkpoint: another run's checkpoint.pt, e.g. the wider network's;
#      its widths and blocks are read from it), stopped after --train-seconds (default 180) by SIGINT,
#      which checkpoints; history, curves and the checkpoint land in DIR/drunet-gpu             (3 min)
# A step that fails is recorded and the next one still runs; the exit status is that of the worst step.
# --dry-run (any machine, no GPU needed; what tests/test_gpu_recipe.py runs): prints each step's
# command, checks that what it needs is there, and runs step 4 as `gpu_bench.py --dry-run` on the CPU.
# --data: a folder holding CBSD432/ (and Train400/); by default $RESTOREKIT_DATA, shared/data or
# ../shared/data. Without one, step 5 is skipped and says so.
set -u
OUT=benchmarks/results/gpu
DATA=""
TRAIN_SECONDS=180
CHECKPOINT=benchmarks/training/drunet-color-deep/checkpoint.pt
PYTHON="${PYTHON:-python3}"
DRY=0
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --data) DATA="$2"; shift 2 ;;
        --train-seconds) TRAIN_SECONDS="$2"; shift 2 ;;
        --checkpoint) CHECKPOINT="$2"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$TRAIN_SECONDS" in ''|*[!0-9]*) echo "gpu_check.sh: --train-seconds must be a whole number of seconds" >&2; exit 2 ;; esac
command -v "$PYTHON" >/dev/null 2>&1 || { echo "gpu_check.sh: no python '$PYTHON' (give --python PATH)" >&2; exit 2; }
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT" || { echo "gpu_check.sh: cannot create --out $OUT" >&2; exit 2; }
if [ -z "$DATA" ]; then
    for candidate in "${RESTOREKIT_DATA:-}" shared/data ../shared/data; do
        if [ -n "$candidate" ] && [ -d "$candidate/CBSD432" ]; then DATA="$candidate"; break; fi
    done
fi
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
WORST=0
note() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NUMBER NAME COMMAND...: run (or, dry, print) one step, logging to $OUT/NUMBER-NAME.log
    local number="$1" name="$2"; shift 2
    local log="$OUT/$number-$name.log" start rc
    if [ "$DRY" = 1 ]; then
        note "[dry run] step $number $name: $*"
        return 0
    fi
    start=$(date +%s)
    "$@" > "$log" 2>&1
    rc=$?
    note "step $number $name: exit $rc in $(( $(date +%s) - start )) s (log: $log)"
    [ "$rc" -gt "$WORST" ] && WORST=$rc
    return 0
}

# 1. the machine
if [ "$DRY" = 1 ]; then
    note "[dry run] GPU recipe; python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'); out $OUT"
else
    CARD=$("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>/dev/null)
    if [ -z "$CARD" ]; then
        note "no CUDA device visible to $PYTHON's torch: this recipe needs a GPU (use --dry-run elsewhere)"
        exit 2
    fi
    note "card: $CARD; $(nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
    note "python $("$PYTHON" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)')"
    nvidia-smi > "$OUT/01-machine.log" 2>&1
fi
ARCH=$("$PYTHON" -c 'import torch; c = torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None; print(f"{c[0]}.{c[1]}" if c else "9.0")' 2>/dev/null || echo 9.0)

# 2. build the compiled core for this card, and register the entry points
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS="${MAX_JOBS:-16}"
step 02 build bash -c "'$PYTHON' setup.py build_ext --inplace && '$PYTHON' -m pip install --no-deps --no-build-isolation -e ."

# 3. the CUDA tests (and the compiled ops' own tests, which include their CUDA cases)
step 03 cuda-tests "$PYTHON" -m pytest -q -p no:cacheprovider -m "cuda" tests
step 03 compiled-op-tests "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_ops_compiled.py tests/test_nn_functions.py

# 4. CUDA against CPU, side by side
if [ "$DRY" = 1 ]; then
    note "[dry run] step 04 timings: $PYTHON benchmarks/gpu_bench.py --dry-run (CPU only, once each)"
    "$PYTHON" benchmarks/gpu_bench.py --dry-run --json "$OUT/gpu_bench_dry_run.json" | tee -a "$SUMMARY"
    rc=${PIPESTATUS[0]}
    [ "$rc" -gt "$WORST" ] && WORST=$rc
else
    step 04 timings "$PYTHON" benchmarks/gpu_bench.py --json "$OUT/gpu_bench.json"
    cat "$OUT/04-timings.log" >> "$SUMMARY"
fi

# 5. the prior's training, continued on the GPU with a larger batch
if [ ! -f "$CHECKPOINT" ]; then
    note "step 05 training: skipped, $CHECKPOINT is missing"
    WORST=1
elif [ -z "$DATA" ]; then
    note "step 05 training: skipped, no training data (give --data DIR holding CBSD432/)"
else
    GRAY=(--gray-data "$DATA/Train400")
    [ -d "$DATA/Train400" ] || GRAY=(--gray-fraction 0)
    # the network the checkpoint holds (a grown one is wider or deeper than the trainer's default)
    SHAPE=$("$PYTHON" -c 'import sys; from restorekit.training import load_checkpoint
from restorekit_plugins.drunet.widen import architecture_of
a = architecture_of(load_checkpoint(sys.argv[1])["model"])
print(",".join(map(str, a["widths"])), a["blocks"])' "$CHECKPOINT" 2>"$OUT/05-checkpoint.log")
    if [ -z "$SHAPE" ]; then
        note "step 05 training: skipped, cannot read the network of $CHECKPOINT (log: $OUT/05-checkpoint.log)"
        WORST=1
    else
        TRAIN=("$PYTHON" -m restorekit.cli.main train drunet --init-from "$CHECKPOINT" --widths "${SHAPE% *}"
               --blocks "${SHAPE#* }" --batch-size 64 --device cuda
               --data "$DATA/CBSD432" "${GRAY[@]}" --epochs 100 --out "$OUT/drunet-gpu" --overwrite
               --threads 8 --no-progress)
        if [ "$DRY" = 1 ]; then
            "$PYTHON" -m restorekit.cli.main train drunet --help 2>/dev/null | grep -q -- "--init-from" \
                || { note "[dry run] step 05: 'restorekit train drunet' has no --init-from"; WORST=1; }
            note "[dry run] step 05 training (stopped by SIGINT after $TRAIN_SECONDS s): ${TRAIN[*]}"
        else
            start=$(date +%s)
            timeout -s INT -k 60 "$TRAIN_SECONDS" "${TRAIN[@]}" > "$OUT/05-training.log" 2>&1
            rc=$?
            case "$rc" in  # 124: stopped by the planned SIGINT (the trainer checkpoints and exits)
                0|124|130) note "step 05 training: ran $(( $(date +%s) - start )) s (exit $rc; 124/130: stopped as planned)" ;;
                *) note "step 05 training: exit $rc (log: $OUT/05-training.log)"; [ "$rc" -gt "$WORST" ] && WORST=$rc ;;
            esac
            [ -f "$OUT/drunet-gpu/history.json" ] && note "training history: $OUT/drunet-gpu/history.json"
        fi
    fi
fi
note "worst exit status: $WORST"
exit "$WORST"
