#!/usr/bin/env bash
# The prepared command for the lent GPU machine: installs the carried wheels (fastai and the pure-python packages
# that machine lacks), runs the whole benchmark matrix under a hard time budget, renders the report, and leaves
# everything in $OUT. tools/README.md says how to fetch the wheels and how this was tested.
#
#   device `run`: command "BENCH_COMMIT=<sha> bash tools/gpu_bench.sh", carry [".whl"], timeout_s 600
#                 (about 7 minutes of wall time: 400 s of benchmarks at most, plus install, imports and the report)
#   on a CPU, to prove the install and every code path (the GPU matrix at tiny sizes, in a venv with only torch,
#   torchvision and the GPU image's packages):
#                 PATH=/tmp/gpuvenv/bin:$PATH OUT=/tmp/out BENCH_SIZE=sim bash tools/gpu_bench.sh
#
# $OUT receives 7 files (the device returns at most 8): log, nvidia-smi.txt, benchmark.json (pytest-benchmark),
# records.jsonl (one line per benchmark, written as it finishes: survives a killed run), results.md,
# epoch_times.png, ratios.png.
# Env: OUT (default results/tmp/gpu), BENCH_SIZE (gpu), BUDGET_S (pytest's hard limit, 400), SITE (/tmp/site),
# BENCH_COMMIT (the commit measured: the device's copy of the tree has no .git), BENCH_FALLBACK=1 (install the
# carried pytest 9.2 + pytest-benchmark 5.3.1 from .whl/fallback even when the image's would do).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/tmp/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg BENCH_SIZE=${BENCH_SIZE:-gpu} BENCH_JSONL=$OUT/records.jsonl
BUDGET_S=${BUDGET_S:-400}
SITE=${SITE:-/tmp/site}
rm -f "$BENCH_JSONL"

main() {
  echo "== $(date -u +%FT%TZ) gpu_bench: profile $BENCH_SIZE, budget ${BUDGET_S}s, commit ${BENCH_COMMIT:-unset}"
  ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_bench: no wheels in .whl/ (carry [\".whl\"]; see tools/README.md)"; return 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { echo "gpu_bench: wheel install failed"; return 2; }
  export PYTHONPATH=$SITE:$PWD
  # pytest >= 8.1 and pytest-benchmark are on the GPU image; should they not be, the carried ones (.whl/fallback)
  if [ -n "${BENCH_FALLBACK:-}" ] || ! python3 -c "import sys, pytest, pytest_benchmark
sys.exit(tuple(map(int, pytest.__version__.split('.')[:2])) < (8, 1))" 2>/dev/null; then
    echo "gpu_bench: installing the fallback pytest + pytest-benchmark from .whl/fallback"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      .whl/fallback/*.whl || { echo "gpu_bench: fallback install failed"; return 2; }
  fi
  { nvidia-smi && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
      --format=csv; } > "$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi here" > "$OUT/nvidia-smi.txt"
  python3 - <<'EOF'
import importlib, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| cudnn", torch.backends.cudnn.version(), "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for m in ("torchvision", "fastai", "fastcore", "fasttransform", "plum", "pytest", "pytest_benchmark", "hypothesis",
          "matplotlib", "pandas", "numpy", "fastai.vision.all", "fastai.collab", "fastai.callback.all", "impl.learner",
          "impl.vision", "impl.collab", "fixtures"):
    try: print(f"  {m:<20} {getattr(importlib.import_module(m), '__version__', 'ok')}")
    except Exception as e: print(f"  {m:<20} IMPORT FAILED: {type(e).__name__}: {e}")
EOF
  # Most important first, so that a cut-short run still answers IMPL-10 and FP16-6 (pytest keeps this order).
  timeout -s INT -k 30 "$BUDGET_S" python3 -m pytest -p no:cacheprovider --no-claims-table -p no:warnings -v \
    benches/bench_peak.py benches/bench_loop.py::test_loop_vision benches/bench_vision.py::test_fp16_speedup \
    benches/bench_loop.py::test_loop_collab benches/bench_embedding.py benches/bench_collab.py \
    benches/bench_vision.py::test_fp16_e2e \
    --benchmark-json="$OUT/benchmark.json" --benchmark-storage=file:///tmp/bench-store --benchmark-autosave \
    --benchmark-columns=median,min,max,rounds --benchmark-sort=name
  local rc=$?
  echo "== pytest exit $rc$( [ $rc = 124 ] && echo ': cut at the time budget; what finished is saved')"
  if [ -s "$OUT/benchmark.json" ]; then python3 -m benches.report "$OUT/benchmark.json" --out "$OUT"
  else python3 -m benches.report "$BENCH_JSONL" --out "$OUT"; fi
  nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv >> "$OUT/nvidia-smi.txt" 2>/dev/null
  [ -s "$OUT/results.md" ] && sed -n '1,60p' "$OUT/results.md"
  return $rc
}

main 2>&1 | tee "$OUT/log"
exit "${PIPESTATUS[0]}"
