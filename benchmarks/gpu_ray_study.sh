#!/usr/bin/env bash
# The Fashion-MNIST ddpm study on one GPU through Ray, with a fraction of the GPU per unit
# (issue 10; not run in CI). Records the wall time and the GPU utilisation.
#
# A unit (one small CNN trained and evaluated) leaves a large GPU nearly idle; Ray runs
# 1/FRACTION units on the GPU at a time (num_gpus=FRACTION each), plus the ddpm generation
# shards with the same reservation. The config is a GPU-sized variant of
# examples/fashion-mnist-ddpm.yaml (fewer seeds, sizes and epochs; see make_config below) so
# that it finishes within ~5 minutes on one H200 with 16 CPU cores; pass `full` to run the
# example itself (much longer: give LIMIT accordingly).
#
# Usage (from the repository root, synthaug and ray importable or src/ on PYTHONPATH):
#     benchmarks/gpu_ray_study.sh OUT_DIR [gpu|full] [FRACTION]
# Writes OUT_DIR/timing.json (wall seconds, units, units/s), OUT_DIR/gpu-utilisation.csv
# (nvidia-smi every 500 ms), OUT_DIR/gpu-summary.txt, OUT_DIR/study.log and the run folder
# OUT_DIR/run (results.jsonl, summary.md, report.html). Stopped at $LIMIT seconds; a rerun
# into the same OUT_DIR resumes.
set -u
OUT=${1:?usage: benchmarks/gpu_ray_study.sh OUT_DIR [gpu|full] [FRACTION]}
MODE=${2:-gpu}
FRACTION=${3:-0.125}
LIMIT=${LIMIT:-420}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 RAY_AUTH_MODE=disabled
"$PYTHON" -c "import ray, torch; assert torch.cuda.is_available()" || {
    echo "needs ray (pip install 'synthaug[ray]') and a CUDA GPU" >&2
    exit 2
}

CONFIG="$OUT/study.yaml"
"$PYTHON" - "$MODE" "$FRACTION" "$CONFIG" <<'EOF'
import sys

import yaml

mode, fraction, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
config = yaml.safe_load(open("examples/fashion-mnist-ddpm.yaml"))
if mode == "gpu":
    config["synthetic"][0]["generate"]["per_class"] = 1600
    keep = {10, 50, 100, 400, 800, 1600}
    for regime in config["regimes"]:
        regime["sizes"] = [size for size in regime["sizes"] if size in keep] or regime["sizes"][:1]
    config["method_params"] = {"epochs": 10, "batch_size": 128, "patience": 3}
    config["audit"] = {"folds": 3, "method": "deterministic", "epochs": 5, "seed": 0}
    config["seeds"] = [0, 1, 2]
    config["exchange_rate_at"] = [10, 50, 100, 400]
config["device"] = "cuda"
config["threads"] = 1
# A private Ray instance on this machine: all its CPUs and its GPU, shared by the units.
config["execution"] = {"ray": {"address": "local", "num_cpus": 1, "num_gpus": fraction}}
yaml.safe_dump(config, open(path, "w"), sort_keys=False)
EOF

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    >"$OUT/gpu-utilisation.csv" 2>/dev/null &
SAMPLER=$!
STARTED=$(date +%s.%N)
timeout "$LIMIT" "$PYTHON" -m synthaug.cli study "$CONFIG" --out "$OUT/run" --no-progress \
    >"$OUT/study.log" 2>&1
STATUS=$?
ENDED=$(date +%s.%N)
kill "$SAMPLER" 2>/dev/null

"$PYTHON" - "$OUT" "$STARTED" "$ENDED" "$STATUS" "$MODE" "$FRACTION" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

out, started, ended, status, mode, fraction = sys.argv[1:]
out = Path(out)
seconds = float(ended) - float(started)
results = out / "run" / "results.jsonl"
units = sum(1 for _ in open(results)) if results.exists() else 0
timing = {"mode": mode, "gpu_fraction_per_unit": float(fraction), "exit_status": int(status),
          "wall_seconds": round(seconds, 1), "units_logged": units,
          "units_per_second": round(units / seconds, 4) if seconds else None}
(out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
samples = []
for line in (out / "gpu-utilisation.csv").read_text().splitlines():
    parts = [part.strip() for part in line.split(",")]
    if len(parts) == 3 and parts[1].isdigit():
        samples.append((int(parts[1]), float(parts[2])))
if samples:
    utilisation = [u for u, _ in samples]
    summary = (f"{len(samples)} samples over {seconds:.0f} s: GPU utilisation mean {statistics.mean(utilisation):.0f} %, "
               f"median {statistics.median(utilisation):.0f} %, busy (>0 %) {sum(u > 0 for u in utilisation) / len(utilisation):.0%} "
               f"of the time; memory peak {max(m for _, m in samples):.0f} MiB")
else:
    summary = "no nvidia-smi samples"
(out / "gpu-summary.txt").write_text(summary + "\n")
print(json.dumps(timing), summary, sep="\n")
EOF
tail -5 "$OUT/study.log"
