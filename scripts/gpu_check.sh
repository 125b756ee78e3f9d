#!/usr/bin/env bash
# The GPU path end to end, in under 5 minutes, into one JSON:
#   1. list the devices TensorFlow sees (and nvidia-smi's view when there is one);
#   2. train a short run with the automatic precision (mixed_bfloat16 on a GPU) and the trainer's
#      strategy (MirroredStrategy over every GPU when there are two or more);
#   3. generate digits from the run's generator;
#   4. python -m aigc bench --quick (from scratch: one seed, one epoch of each, beside the tutorial);
#   5. write OUT/gpu_check.json.
# Without a GPU it says so in one line, writes the JSON with "gpu": false and exits 0.
#
# Usage: scripts/gpu_check.sh [--data MNIST.npz] [--out DIR] [--allow-cpu]
#   --allow-cpu runs every step on the CPU when there is no GPU: a rehearsal of this script, not a GPU figure.
#   MNIST comes from --data, else $AIGC_MNIST (the real file: synthetic data proves nothing here).
#   OUT defaults to runs/gpu_check (git-ignored); its runs root is OUT, so no other job's lock is touched.
set -uo pipefail
cd "$(dirname "$0")/.."

DATA="${AIGC_MNIST:-}"
OUT="runs/gpu_check"
ALLOW_CPU=0
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --allow-cpu) ALLOW_CPU=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see $0 --help)" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
mkdir -p "$OUT" || { echo "error: cannot create $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
export AIGC_RUNS_DIR="$OUT"
RESULT="$OUT/gpu_check.json"
STARTED=$(date +%s)

# Each step: its exit code and seconds, kept for the JSON.
declare -A RC SECONDS_OF
step() {  # step NAME TIMEOUT_S COMMAND...
    local name="$1" limit="$2"; shift 2
    local began; began=$(date +%s)
    echo "[gpu_check] $name ..." >&2
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    RC[$name]=$?
    SECONDS_OF[$name]=$(( $(date +%s) - began ))
    [ "${RC[$name]}" -eq 0 ] || echo "[gpu_check] $name failed (exit ${RC[$name]}, ${SECONDS_OF[$name]} s): see $OUT/$name.log" >&2
}

write_json() {  # write_json GPU_FOUND REASON
    GPU_FOUND="$1" REASON="$2" OUT="$OUT" STARTED="$STARTED" DATA="$DATA" \
    RCS="$(for k in "${!RC[@]}"; do echo "$k ${RC[$k]} ${SECONDS_OF[$k]}"; done)" \
    "$PYTHON" - <<'EOF'
import json, os, time
from pathlib import Path

out = Path(os.environ["OUT"])

def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None

steps = {}
for line in os.environ["RCS"].splitlines():
    name, rc, seconds = line.split()
    steps[name] = {"exit_code": int(rc), "seconds": int(seconds)}
status = load("run/status.json") or {}
log = (out / "run" / "train.log").read_text(errors="replace") if (out / "run" / "train.log").exists() else ""
result = {
    "gpu": os.environ["GPU_FOUND"] == "1",
    "reason": os.environ["REASON"] or None,
    "ok": {"train", "generate", "bench"} <= set(steps) and all(s["exit_code"] == 0 for s in steps.values()),
    "data": os.environ["DATA"] or None,
    "total_seconds": int(time.time() - int(os.environ["STARTED"])),
    "steps": steps,
    "devices": load("devices.json"),
    "train": {k: status.get(k) for k in ("state", "precision", "replicas", "workers", "batch_size", "step",
                                          "epoch", "last_epoch", "error")} if status else None,
    "train_log_strategy": next((l.split("] ", 1)[-1] for l in log.splitlines() if "replica(s)" in l), None),
    "generate": load("generate.json"),
    "bench": load("bench.json"),
}
(out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
summary = {k: result[k] for k in ("gpu", "ok", "total_seconds")}
print(json.dumps(summary))
EOF
}

# 1. Devices.
step devices 120 "$PYTHON" - <<'EOF'
import json, os, shutil, subprocess
import tensorflow as tf

gpus = tf.config.list_physical_devices("GPU")
info = {"tensorflow": tf.__version__, "built_with_cuda": tf.test.is_built_with_cuda(),
        "cpus": [d.name for d in tf.config.list_physical_devices("CPU")],
        "gpus": [dict(name=g.name, **{k: str(v) for k, v in tf.config.experimental.get_device_details(g).items()})
                 for g in gpus]}
if shutil.which("nvidia-smi"):
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=30)
    info["nvidia_smi"] = done.stdout.strip().splitlines() or done.stderr.strip()[:300]
open(os.path.join(os.environ["AIGC_RUNS_DIR"], "devices.json"), "w").write(json.dumps(info, indent=1) + "\n")
print(json.dumps(info, indent=1))
EOF
GPUS=$("$PYTHON" -c "import json; print(len(json.load(open('$OUT/devices.json'))['gpus']))" 2>/dev/null || echo 0)
if [ "${RC[devices]}" -ne 0 ] || { [ "$GPUS" -eq 0 ] && [ "$ALLOW_CPU" -eq 0 ]; }; then
    REASON="no GPU visible to TensorFlow (see $OUT/devices.log); the GPU path was not run"
    echo "[gpu_check] $REASON" >&2
    write_json 0 "$REASON"
    echo "[gpu_check] wrote $RESULT" >&2
    exit 0
fi
if [ -z "$DATA" ] || [ ! -f "$DATA" ]; then
    echo "error: the GPU check needs the real MNIST .npz: pass --data PATH or set AIGC_MNIST" >&2
    write_json "$(( GPUS > 0 ))" "no MNIST file"
    exit 2
fi
echo "[gpu_check] $GPUS GPU(s)" >&2

# 2. A short run: one epoch of MNIST, automatic precision, the trainer's strategy over every GPU.
rm -rf "$OUT/run"
step train 150 "$PYTHON" -m aigc train --run-dir "$OUT/run" --data "$DATA" --epochs 1 --batch-size 256 \
    --precision auto --eval-samples 1000

# 3. Generate from the run's generator (timed with the process start, as a user would see it).
if [ -f "$OUT/run/generator.keras" ]; then
    step generate 60 "$PYTHON" - "$OUT" <<'EOF'
import json, sys, time
from pathlib import Path

out = Path(sys.argv[1])
from aigc.engine.checkpoints import load_generator
from aigc.engine.sampling import generate, grid

generator, config, card = load_generator(out / "run" / "generator.keras")
generate(generator, 64, None, seed=0, config=config)  # the first call traces
times = []
for seed in range(20):
    began = time.perf_counter()
    images, _labels = generate(generator, 64, None, seed=seed, config=config)
    times.append(time.perf_counter() - began)
grid(images, 8, scale=2).save(out / "generated.png")
times.sort()
result = {"n": 64, "median_ms": round(1000 * times[len(times) // 2], 2), "max_ms": round(1000 * times[-1], 2),
          "shape": list(images.shape), "min": float(images.min()), "max": float(images.max()), "card": card}
(out / "generate.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
print(json.dumps(result))
EOF
fi

# 4. The benchmark, quick: throughput, compute, latency, and one seed from scratch beside the tutorial.
step bench 240 "$PYTHON" -m aigc bench --quick --data "$DATA" --json "$OUT/bench.json"

[ "$GPUS" -gt 0 ] && write_json 1 "" || write_json 0 "a rehearsal on the CPU (--allow-cpu): no GPU figures"
echo "[gpu_check] wrote $RESULT" >&2
