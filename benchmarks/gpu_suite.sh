#!/usr/bin/env bash
# The methods benchmark (issue 3) and the noise benchmark (issue 6) on one GPU machine, split
# over parallel processes (not run in CI).
#
# A small CNN step is a few milliseconds of kernel launches, so one process leaves a large
# GPU idle; several processes (one per setting and seed, the ensembles apart, since they cost
# five trainings) fill it. Every process writes its rows after each run, and each is stopped
# at $LIMIT seconds, so what finished is kept and the summary and archive are always written.
#
# Usage (from the repository root, synthaug importable or src/ on PYTHONPATH):
#     benchmarks/gpu_suite.sh OUT_DIR [smoke|full]
# Figures: OUT_DIR/methods-summary.txt, OUT_DIR/noise-*/summary.txt; everything is also
# packed into OUT_DIR/gpu-suite.tar.gz.
set -u
OUT=${1:?usage: benchmarks/gpu_suite.sh OUT_DIR [smoke|full]}
MODE=${2:-full}
LIMIT=${LIMIT:-480}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT/logs"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# A BNN variant next to the default one: last layers only, started from the deterministic
# solution (Kristiadi et al. 2020; Sharma et al. 2023).
OPTIONS='{"bnn-last": {"method": "bnn", "bayesian_layers": "last", "init_from_deterministic": true}}'
if [ "$MODE" = smoke ]; then
    METHOD_SIZE=(--train-size 3000 --epochs 1 --small-epochs 2)
    NOISE_SIZE=(--images 600 --epochs 1 --audit-epochs 1 --folds 2 --reference "fashion-mnist:train[:1000]"
                --generated-per-class 20 --copy-check-images 100)
else
    # 10 epochs rather than the CPU default of 15, so that every run fits one 10-minute GPU lease.
    METHOD_SIZE=(--epochs "${EPOCHS:-10}")
    NOISE_SIZE=()
fi

methods() {  # methods() NAME ARGS...: one benchmark process, logged, stopped at $LIMIT
    local name=$1; shift
    timeout "$LIMIT" "$PYTHON" benchmarks/methods_fashion_mnist.py --threads 1 --method-options "$OPTIONS" \
        "${METHOD_SIZE[@]}" --out "$OUT/methods-$name.json" "$@" >"$OUT/logs/methods-$name.log" 2>&1 &
}

for setting in full noisy; do
    for seed in 0 1 2; do
        methods "$setting-$seed" --settings "$setting" --seed-list "$seed" \
            --methods deterministic,bnn,temperature,mc-dropout,laplace,bnn-last
        methods "$setting-$seed-ensemble" --settings "$setting" --seed-list "$seed" --methods ensemble
    done
done
methods small --settings small --seeds 3 \
    --methods deterministic,bnn,temperature,mc-dropout,laplace,bnn-last,ensemble
for source in real generated; do
    timeout "$LIMIT" "$PYTHON" benchmarks/noise.py --source "$source" "${NOISE_SIZE[@]}" --out "$OUT/noise-$source" \
        >"$OUT/logs/noise-$source.log" 2>&1 &
done
wait

"$PYTHON" benchmarks/methods_fashion_mnist.py --summarize "$OUT"/methods-*.json >"$OUT/methods-summary.txt" 2>&1
# Generated and filtered image files stay behind (the summaries, scores and grids travel).
tar -czf "$OUT/gpu-suite.tar.gz" -C "$OUT" --exclude gpu-suite.tar.gz --exclude='./*/*/*.png' .
