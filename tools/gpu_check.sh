#!/usr/bin/env bash
# Issue 15's one prepared command for the lent GPU machine (about 400 s in all): the CUDA claims of the spec on both
# backends, then the benchmark groups that decide IMPL-9, IMPL-10 and FP16-6 at this commit, most important first.
# tools/gpu_bench.sh is the whole matrix (7 minutes); this is the short check. tools/README.md says how to fetch the
# wheels in .whl/, the device call, and how this was rehearsed on a CPU.
#
#   device `run`: command "BENCH_COMMIT=<sha> bash tools/gpu_check.sh", carry [".whl"], timeout_s 430
#   on a CPU (the same commands; the spec's CUDA runs skip, the GPU matrix at tiny sizes):
#                 PATH=/tmp/gpucheck/venv/bin:$PATH OUT=/tmp/gpu-rehearsal BENCH_SIZE=sim CAP_S=1500 \
#                   bash tools/gpu_check.sh
#
# Stages, each under `timeout`, each run whatever the one before did (the exit code is 1 when any failed):
#   install  the carried wheels into $SITE (pip --no-index --target), the repository on PYTHONPATH
#   env      $OUT/env.txt: commit, nvidia-smi -L and clocks, python / torch / CUDA / cuDNN / GPU, every module the
#            run imports with its version, each carried wheel's requirements as found here
#   spec     the tests of the CUDA claims FP16-* and IMPL-8 on impl and fastai (FP16-2/-3/-4 run on CUDA when
#            there is one; `-m cuda` alone would pick only FP16-4's bf16-less GPU test, FP16-8 and the real-data
#            tests), --claims-json $OUT/claims-cuda.json (the commit written in when git is absent)
#   bench    the benchmark groups in $BENCH_ORDER's order, the rest deselected, under `timeout -s INT` (pytest
#            keeps what finished): $OUT/benchmark.json, $OUT/records.jsonl (one line per finished benchmark).
#            The compiled loops (group loop-compiled: torch.compile in impl and in the plain loop, compile time in
#            extra_info.compile_s) are the optional part: each skips itself when less than its need_s (r50 100 s,
#            collab 60 s) is left before BENCH_DEADLINE (the stage's end), or with BENCH_COMPILE=0
#   report   python -m benches.report: $OUT/results.md, epoch_times.png, ratios.png
# $OUT receives 8 files (the device returns at most 8): log, env.txt, claims-cuda.json, benchmark.json,
# records.jsonl, results.md, epoch_times.png, ratios.png.
# Env: OUT (default results/tmp/gpu-check), CAP_S (the whole run's hard limit, 400), SPEC_S (the spec's, 150),
# BENCH_SIZE (gpu), SITE (/tmp/site), BENCH_COMMIT (the commit measured; else a file COMMIT in the repository
# root; else git), BENCH_FALLBACK=1 (install the carried pytest + pytest-benchmark from .whl/fallback even when the
# image's would do), BENCH_ORDER (regexes on node ids, one per group, separated by spaces: the benches run),
# BENCH_COMPILE (0: skip the compiled loops), BENCH_COMPILE_MODE (torch.compile's mode for them, default "default").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/tmp/gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg BENCH_SIZE=${BENCH_SIZE:-gpu} BENCH_JSONL=$OUT/records.jsonl
CAP_S=${CAP_S:-400}
SPEC_S=${SPEC_S:-150}
SITE=${SITE:-/tmp/site}
T0=$(date +%s)
# Most important first (a run cut at its budget still answers these): matmul ceilings (seconds; the report's % of
# peak), IMPL-9/10 resnet50 fp16 channels_last impl vs plain at bs 64/128/256, IMPL-9 collab impl vs plain, the
# compiled loops (issue 15: resnet50 fp16 cl bs 64, collab; each skipped when its time is not left), FP16-6
# resnet50 fp16 vs strict fp32 and TF32 (measured at 3192aeb and c46643e), then FP16-7/ARCH-5 resnet34, resnet18.
export BENCH_ORDER=${BENCH_ORDER:-'bench_peak\.py test_loop_vision\[resnet50 test_loop_collab test_loop_compiled
  test_fp16_speedup\[resnet50- test_fp16_speedup\[resnet34- test_loop_vision\[resnet18 test_fp16_speedup\[resnet18-'}
if [ -n "${BENCH_COMMIT:-}" ]; then COMMIT=$BENCH_COMMIT FROM=BENCH_COMMIT
elif [ -s COMMIT ]; then COMMIT=$(tr -d ' \n' < COMMIT) FROM="file COMMIT"
else COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown) FROM=git; fi
export BENCH_COMMIT=$COMMIT COMMIT FROM SITE OUT
rm -f "$BENCH_JSONL" "$OUT/claims-cuda.json" "$OUT/benchmark.json"
failed=()

left() { echo $((CAP_S - ($(date +%s) - T0))); }
budget() { local l; l=$(( $(left) - $2 )); echo $(( l < $1 ? (l < 5 ? 5 : l) : $1 )); }  # min(want, left - reserve)
stage() {  # stage NAME SECONDS CMD...: under timeout -s INT (pytest saves what finished), killed 10 s later; CMD
  local name=$1 s=$2 t rc; t=$(date +%s); shift 2  # may be a function of this file (run in a child bash)
  echo "== $(date -u +%T) $name: up to ${s}s ($(left)s of ${CAP_S}s left)"
  if declare -F "$1" >/dev/null; then timeout -s INT -k 10 "$s" bash -c "$(declare -f); $*"
  else timeout -s INT -k 10 "$s" "$@"; fi
  rc=$?
  echo "== $name: exit $rc after $(( $(date +%s) - t ))s$( [ $rc = 124 ] && echo ', cut at its time budget')"
  [ $rc = 0 ] || failed+=("$name:$rc")
}

install() {
  ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/ (carry [\".whl\"]; see tools/README.md)"; return 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || return 2
  # pytest >= 8.1, pytest-benchmark and hypothesis are on the GPU image; should one not be, the carried ones
  local py="import sys, pytest, pytest_benchmark; sys.exit(tuple(map(int, pytest.__version__.split('.')[:2])) < (8, 1))"
  if [ -n "${BENCH_FALLBACK:-}" ] || ! PYTHONPATH=$SITE python3 -c "$py" 2>/dev/null; then
    echo "installing the carried pytest + pytest-benchmark (.whl/fallback)"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      .whl/fallback/{pytest,pluggy,iniconfig,pytest_benchmark,py_cpuinfo2}-*.whl || return 2
  fi
  if ! PYTHONPATH=$SITE python3 -c "import hypothesis" 2>/dev/null; then
    echo "installing the carried hypothesis (.whl/fallback; cp312)"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      .whl/fallback/{hypothesis,sortedcontainers}-*.whl || return 2
  fi
  # bench ordering: a pytest plugin (-p gpu_check_order) that runs the node ids matching $BENCH_ORDER's regexes,
  # in that order, and deselects the rest
  cat > "$SITE/gpu_check_order.py" <<'EOF'
import os, re
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    pats = [re.compile(p) for p in os.environ["BENCH_ORDER"].split()]
    rank = lambda it: next((i for i, p in enumerate(pats) if p.search(it.nodeid)), None)
    keep = sorted((it for it in items if rank(it) is not None), key=rank)  # stable: collection order within a rank
    config.hook.pytest_deselected(items=[it for it in items if rank(it) is None])
    items[:] = keep
EOF
}

env_report() { env_info > "$OUT/env.txt" 2>&1; }
env_info() {
  echo "commit: $COMMIT (from $FROM)"
  echo "date: $(date -u +%FT%TZ)"
  echo "bench profile: $BENCH_SIZE"
  { nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
      --format=csv; } 2>&1 || echo "no nvidia-smi here"
  echo "C compiler (torch.compile's inductor and triton need one): $( (cc --version || gcc --version) 2>&1 | head -1)"
  python3 - <<'EOF'
import importlib, platform, re, sys
from importlib import metadata
import torch
print("python", platform.python_version(), sys.executable, "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| cudnn", torch.backends.cudnn.version(), "| gpu",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for m in ("torchvision", "triton", "fastai", "fastcore", "fasttransform", "fastprogress", "fastdownload", "plum", "beartype",
          "pytest", "pytest_benchmark", "hypothesis", "matplotlib", "pandas", "numpy", "PIL", "scipy", "sklearn",
          "fastai.vision.all", "fastai.collab", "fastai.callback.all", "impl.learner", "impl.vision", "impl.collab",
          "fixtures", "spec.plugin", "benches.report"):
    try:
        mod = importlib.import_module(m)
        print(f"  {m:<20} {getattr(mod, '__version__', 'ok')}  {getattr(mod, '__file__', '')}")
    except Exception as e:
        print(f"  {m:<20} IMPORT FAILED: {type(e).__name__}: {e}")
from packaging.requirements import Requirement
from packaging.version import Version
print("carried wheels' requirements (spacy: only fastai.text imports it):")
for d in ("fastai", "fastcore", "fasttransform", "fastprogress", "fastdownload", "plum-dispatch", "beartype"):
    try:
        reqs = [Requirement(r) for r in metadata.requires(d) or []]
    except metadata.PackageNotFoundError:
        print(f"  {d}: NOT INSTALLED")
        continue
    bad = []
    for r in reqs:
        if r.marker and not r.marker.evaluate({"extra": ""}):
            continue
        try:
            v = metadata.version(r.name)
            if not r.specifier.contains(Version(v), prereleases=True):
                bad.append(f"{r} (found {v})")
        except metadata.PackageNotFoundError:
            bad.append(f"{r} (missing)")
    print(f"  {d} {metadata.version(d)}: " + ("all present" if not bad else "; ".join(bad)))
EOF
}

main() {
  echo "== $(date -u +%FT%TZ) gpu_check: commit $COMMIT, profile $BENCH_SIZE, cap ${CAP_S}s, OUT $OUT"
  stage install 90 install
  export PYTHONPATH=$SITE:$PWD
  stage env 60 env_report
  cat "$OUT/env.txt"
  # the spec: every test file that cites an FP16 claim or IMPL-8, those claims only, both backends
  local files; files=$(grep -lE '"(FP16-[0-9]+|IMPL-8)"' spec/test_*.py | tr '\n' ' ')
  echo "spec files: $files"
  # shellcheck disable=SC2086
  stage spec "$(budget "$SPEC_S" 200)" python3 -m pytest $files --claims 'FP16-*,IMPL-8' --backend all \
    --claims-json "$OUT/claims-cuda.json" -p no:cacheprovider -q -rs
  [ -s "$OUT/claims-cuda.json" ] && python3 - "$OUT/claims-cuda.json" "$COMMIT" "$FROM" <<'EOF'
import json, sys
p, c, src = sys.argv[1:]
d = json.load(open(p))
env = d.setdefault("environment", {})
if env.get("commit") != c:  # the device's copy of the tree may carry no .git, or a stale one (c46643e's run said
    env["commit_git"], env["commit"], env["commit_from"] = env.get("commit"), c, src  # a8c7bfd): the commit told
    json.dump(d, open(p, "w"), indent=1, default=str)
print("claims-cuda.json:", "; ".join(f"{r['id']} {r.get('results')}" for r in d.get("claims", [])))
EOF
  local bs; bs=$(budget 400 35)
  export BENCH_DEADLINE=$(( $(date +%s) + bs ))  # the compiled loops skip themselves when their time is not left
  stage bench "$bs" python3 -m pytest -p gpu_check_order -p no:cacheprovider --no-claims-table \
    -p no:warnings -v benches --benchmark-json="$OUT/benchmark.json" --benchmark-columns=median,min,max,rounds \
    --benchmark-sort=name
  local src="$OUT/benchmark.json"; [ -s "$src" ] || src=$BENCH_JSONL
  stage report "$(budget 60 0)" python3 -m benches.report "$src" --out "$OUT"
  nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv >> "$OUT/env.txt" 2>/dev/null
  [ -s "$OUT/results.md" ] && sed -n '1,50p' "$OUT/results.md"
  echo "== $(date -u +%T) gpu_check done in $(( $(date +%s) - T0 ))s; failed stages: ${failed[*]:-none}"
  ls -la "$OUT"
  [ ${#failed[@]} = 0 ]
}

main 2>&1 | tee "$OUT/log"
exit "${PIPESTATUS[0]}"
