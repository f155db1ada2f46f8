"""The benches' conftest: the claims plugin, bench_*.py collection, size profile, machine info in every run."""

import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from benches import _timing

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("IMPL_QUIET", "1")  # impl's fits print no epoch table or progress bar while timed
# the claims plugin (benchmark claims' verdicts) comes from the root conftest.py


def pytest_configure(config):
    smoke = config.getoption("benchmark_disable", False)
    p = os.environ.get("BENCH_SIZE") or ("smoke" if smoke else "gpu" if torch.cuda.is_available() else "cpu")
    if p not in _timing.PROFILES:
        raise pytest.UsageError(f"BENCH_SIZE={p!r}: expected one of {_timing.PROFILES}")
    _timing.PROFILE = p
    torch.manual_seed(0)


def pytest_collect_file(file_path, parent):
    "bench_*.py are test modules here (pytest's default only collects test_*.py, or files named on the command line)."
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)


def pytest_report_header(config):
    return [
        f"benches: profile {_timing.PROFILE} (env BENCH_SIZE overrides), device {_timing.device()}"
    ]


def _run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    "GPU model, driver, CUDA, cuDNN, torch, TF32 and cudnn.benchmark flags, and the packages that matter."
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        **_timing.tf32_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "bench_profile": _timing.PROFILE,
        "python": platform.python_version(),
    }
    for mod in ("torchvision", "fastai", "numpy", "pandas"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None  # noqa: BLE001 - reported as missing
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": p.name,
            "gpu_count": torch.cuda.device_count(),
            "gpu_memory_gib": round(p.total_memory / 2**30, 1),
            "sm_count": p.multi_processor_count,
            "capability": f"{p.major}.{p.minor}",
        }
        if shutil.which("nvidia-smi"):
            q = _run("nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,power.limit", "--format=csv,noheader")
            info["driver"], info["max_sm_clock"], info["power_limit"] = (
                (q.splitlines()[0].split(", ") + [None] * 3)[:3] if q else (None, None, None)
            )
    else:
        info["gpu"] = None
    return info


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info.update(machine())


def tree_hash() -> str:
    "A hash of the code that was measured (impl, benches, fixtures): identifies the run where git is absent."
    h = hashlib.sha1()
    for d in ("impl", "benches", "fixtures"):
        for f in sorted((ROOT / d).rglob("*.py")):
            h.update(str(f.relative_to(ROOT)).encode() + f.read_bytes())
    return h.hexdigest()[:12]


def pytest_benchmark_update_commit_info(config, commit_info):
    "On the GPU machine there is no .git: BENCH_COMMIT (set by whoever runs it) names the commit."
    commit_info["tree_hash"] = tree_hash()
    if c := os.environ.get("BENCH_COMMIT"):
        commit_info.setdefault("id", c)
        if commit_info.get("id") in (None, "", "unversioned"):
            commit_info["id"] = c
        commit_info["bench_commit"] = c
