"""Time `python3 -m nox -s spec` on this machine, each run between two readings of tools/cpu_probe.py, so that a slow
spell of the machine can be told from a slower spec (this project's 2-core VM varies by 1.5x and more within minutes).

    python3 tools/time_spec.py [--runs 3] [--wait-for 0.10,0.34] [--deadline 3600] [-- nox posargs]

--wait-for M,L starts a run only when the probe reads under M s for its matmuls and L s for its loop (this VM's
normal readings: about 0.09 and 0.29), probing once a minute until --deadline seconds have passed. Prints a
Markdown table: the probe before and after, pytest's seconds, the session's wall seconds, the CPU seconds of all
its processes (user + system) and pytest's summary. Runs in the checkout it belongs to, after the spec's venv
exists (a first `nox -s spec`)."""
import argparse
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".nox" / "spec" / "bin" / "python"


def probe() -> tuple[float, float]:
    "(matmul s, loop s) from tools/cpu_probe.py in the spec's venv."
    out = subprocess.run([str(PY), str(ROOT / "tools" / "cpu_probe.py")], capture_output=True, text=True, check=True)
    m = re.search(r"matmul ([\d.]+) s, python loop ([\d.]+) s", out.stdout)
    return float(m[1]), float(m[2])


def _cpu() -> float:
    "User + system seconds of every finished child process so far (nox, pytest and its workers, the probes)."
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _limits(text: str) -> tuple[float, float]:
    "--wait-for's M,L: two positive seconds."
    try:
        m, lo = map(float, text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"want M,L (two numbers of seconds, e.g. 0.10,0.34), got {text!r}") from None
    if m <= 0 or lo <= 0:
        raise argparse.ArgumentTypeError(f"the seconds must be positive, got {text!r}")
    return m, lo


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--wait-for", type=_limits, help="M,L: start a run only when the probe reads under these seconds")
    ap.add_argument("--deadline", type=float, default=3600, help="seconds after which no run starts")
    ap.add_argument("posargs", nargs="*", help="passed to the spec session after --")
    a = ap.parse_args(argv)
    if not PY.exists():
        sys.exit(f"time_spec: no spec venv at {PY}: run `python3 -m nox -s spec` once first")
    limit = a.wait_for
    end, done = time.monotonic() + a.deadline, 0
    print("| probe before (matmul, loop) | pytest s | session s | CPU s | probe after | pytest's summary |")
    print("|---|---:|---:|---:|---|---|")
    while done < a.runs and time.monotonic() < end:
        before = probe()
        if limit and not (before[0] < limit[0] and before[1] < limit[1]):
            time.sleep(max(0.0, min(60.0, end - time.monotonic())))  # the next probe, or the deadline
            continue
        t, cpu = time.monotonic(), _cpu()
        cmd = [sys.executable, "-m", "nox", "-s", "spec", *(["--", *a.posargs] if a.posargs else [])]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall, cpu, after = time.monotonic() - t, _cpu() - cpu, probe()
        m = (re.findall(r"^=+ (.*) in ([\d.]+)s", out.stdout, re.M) or [None])[-1]  # pytest's last line
        if out.returncode or not m:
            tail = f"{out.stdout[-3000:]}\n{out.stderr[-2000:]}"
            sys.exit(f"time_spec: nox -s spec failed (exit {out.returncode}):\n{tail}")
        done += 1
        print(f"| {before[0]:.3f}, {before[1]:.3f} | {m[1]} | {wall:.1f} | {cpu:.0f} | {after[0]:.3f}, {after[1]:.3f} "
              f"| {m[0]} |", flush=True)
    if done < a.runs:
        why = f" (the probe read under {limit} too seldom)" if limit else ""
        sys.exit(f"time_spec: {done} of {a.runs} runs before the deadline{why}")


if __name__ == "__main__":
    main()
