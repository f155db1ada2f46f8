"""Tests of spec/benchclaims.py: benchmark claims get verdicts from the runs that measured them (synthetic
pytest-benchmark JSON in tmp_path, never the developer's .benchmarks/), with a bootstrap interval, the device class
respected, staleness from git, and the verdict shown by the claims plugin, its JSON, --claims-strict and
--claims-compare. One test reads the committed H200 run in results/."""
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from spec import benchclaims as B
from spec import ledger

ROOT = Path(__file__).resolve().parents[2]
GPU = {"gpu": "NVIDIA H100 80GB HBM3", "driver": "550", "cuda": "12.4", "torch": "2.5", "bench_profile": "gpu"}
CPU = {"gpu": None, "cpu": {"brand_raw": "Test CPU"}, "cpu_count": 2, "torch": "2.5", "bench_profile": "cpu"}


def bench(group, times, extra=None, **params):
    return {"group": group, "name": "test_x", "fullname": "benches/x.py::test_x", "params": params,
            "extra_info": {"epoch_s": list(times), **(extra or {})},
            "stats": {"median": float(np.median(times)), "rounds": len(times)}}


def write(folder, name, machine, date, benches, commit="abc1234", tree=None):
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"datetime": date, "machine_info": machine, "benchmarks": benches,
           "commit_info": {"id": commit, "dirty": False, "tree_hash": tree}}
    (folder / name).write_text(json.dumps(doc))
    return folder / name


def rounds(ratio, n=5, base=1.0, drift=0.0, seed=0):
    "Interleaved rounds of two variants: a shared per-round drift (machine load) and the true ratio."
    r = np.random.default_rng(seed)
    d = base * (1 + drift * r.uniform(-1, 1, n))
    return (d * ratio).round(6).tolist(), d.round(6).tolist()


def fp16_run(strict=2.4, tf32=1.2):
    "resnet34/50 at fp32_strict, fp32 (TF32) and fp16, in the benches' fp16-speedup format."
    out = []
    for arch, t16 in (("resnet34", 0.5), ("resnet50", 0.8)):
        for p, t in (("fp16", t16), ("fp32_strict", t16 * strict), ("fp32", t16 * tf32)):
            mem = 1000.0 if p == "fp16" else 3000.0
            out.append(bench("fp16-speedup", [t * f for f in (1, 1.01, 0.99, 1.02, 0.98)], {"peak_mem_mib": mem},
                             arch=arch, precision=p))
    return out


def emb_run(ratio):
    out = []
    for v in (1000, 10_000, 100_000):
        on, em = rounds(ratio, drift=0.2, seed=v)
        out += [bench("embedding-vs-onehot", em, vocab=v, method="embedding"),
                bench("embedding-vs-onehot", on, vocab=v, method="onehot")]
    return out


# ---------------------------------------------------------------- the interval and the decision
def test_paired_rounds_cancel_the_drift_independent_ones_do_not():
    "Interleaved rounds share the machine's drift: resampling them in pairs gives a tight interval on the ratio."
    a, b = rounds(1.10, n=7, drift=0.3, seed=1)  # every round's ratio is exactly 1.10
    paired = B.check("x", a, b, op="<=", bound=1.05, paired=True)
    indep = B.check("x", a, b, op="<=", bound=1.05, paired=False)
    assert paired["lo"] == pytest.approx(1.10) and paired["hi"] == pytest.approx(1.10), paired
    assert paired["verdict"] == "does not hold", paired["text"]
    assert indep["lo"] < 1.05 < indep["hi"] and indep["verdict"] == "undecided", indep["text"]


@pytest.mark.parametrize("op,bound,value,want", [(">=", 2, 2.5, "holds"), (">=", 2, 1.5, "does not hold"),
                                                 ("<=", 1.1, 1.3, "does not hold"), ("in", (1.5, 2.5), 2.0, "holds"),
                                                 ("in", (1.5, 2.5), 3.0, "does not hold")])
def test_a_clear_interval_decides(op, bound, value, want):
    a, b = rounds(value, n=6, drift=0.05, seed=2)
    c = B.check("t", a, b, op=op, bound=bound, paired=False)
    assert c["verdict"] == want and c["lo"] <= value <= c["hi"], c["text"]


def test_undecided_says_how_many_rounds_and_that_many_decide():
    """A ratio of 1.10 with 10% noise per round, bound 1.05: 5 rounds straddle the bound. At the same spread (the
    5 rounds repeated: the same empirical distribution) the rounds it names clear the bound, a quarter of them not."""
    r = np.random.default_rng(0)
    a, b = (1.10 * (1 + 0.1 * r.standard_normal(5))).tolist(), (1 + 0.1 * r.standard_normal(5)).tolist()
    c = B.check("impl / plain", a, b, op="<=", bound=1.05)
    n = c["rounds_to_decide"]
    assert c["verdict"] == "undecided" and n > 5, c["text"]
    assert f"about {n} rounds would decide it" in c["text"]
    k = math.ceil(n / 5)
    assert B.check("x", a * k, b * k, op="<=", bound=1.05)["verdict"] == "does not hold", (n, k)
    q = max(1, k // 4)
    assert B.check("x", a * q, b * q, op="<=", bound=1.05)["verdict"] == "undecided", (n, q)


def test_too_few_rounds_is_undecided_without_an_interval():
    c = B.check("x", [2.0, 2.1], [1.0, 1.0], op=">=", bound=1.5, paired=True)
    assert c["verdict"] == "undecided" and c["lo"] is None and "no interval" in c["text"], c


def test_decide_rejects_an_unknown_operator():
    with pytest.raises(ValueError, match="op must be"):
        B.decide(1.0, 0.9, 1.1, "<", 1.0, 5)


def test_paired_rounds_need_equal_counts():
    with pytest.raises(ValueError, match="paired rounds need equal counts"):
        B.boot([1, 2, 3], [1, 2], paired=True)


# ---------------------------------------------------------------- choosing the run
def test_cuda_claims_take_the_gpu_run_others_the_newest(tmp_path):
    "A newer CPU run never gives a CUDA-only claim its figure; CF-23 (needs nothing) takes it, the GPU run listed."
    write(tmp_path / "results" / "gpu", "benchmark.json", GPU, "2026-01-01T00:00:00", fp16_run() + emb_run(1.6))
    write(tmp_path / ".benchmarks" / "Linux", "0001_x.json", CPU, "2026-02-01T00:00:00",
          [bench("fp16-speedup", [1, 1, 1], arch="resnet50", precision=p) for p in ("fp16", "fp32")] + emb_run(12))
    vs = B.verdicts([tmp_path / "results", tmp_path / ".benchmarks"], ledger.load())
    assert vs["FP16-6"]["machine"] == GPU["gpu"] and vs["FP16-6"]["device"] == "cuda", vs["FP16-6"]
    assert vs["CF-23"]["machine"] == "CPU Test CPU x2" and vs["CF-23"]["date"] == "2026-02-01", vs["CF-23"]
    c = vs["CF-23"]["checks"][0]
    assert c["value"] == pytest.approx(12, rel=0.05) and vs["CF-23"]["verdict"] == "holds", c["text"]
    assert [(o["machine"], o["verdict"]) for o in vs["CF-23"]["others"]] == [(GPU["gpu"], "does not hold")]
    assert {"IMPL-9", "IMPL-10"}.isdisjoint(vs), "nothing measured them: no verdict"


def test_fp16_verdict_depends_on_the_baseline(tmp_path):
    "2.4x over strict fp32, 1.2x over TF32: the lesson's 2-3x holds against one baseline only, and says so."
    write(tmp_path, "r.json", GPU, "2026-01-01T00:00:00", fp16_run(strict=2.4, tf32=1.2))
    v = B.verdicts([tmp_path], ledger.load())["FP16-6"]
    assert v["verdict"] == "depends on the baseline", v["summary"]
    assert "against strict fp32 (TF32 off): holds" in v["summary"], v["summary"]
    assert "against fp32 with TF32 (PyTorch's convolution default): does not hold" in v["summary"], v["summary"]
    vals = {c["baseline"]: c["value"] for c in v["checks"] if c["baseline"]}
    assert vals[B.STRICT] == pytest.approx(2.4) and vals[B.TF32] == pytest.approx(1.2), vals
    assert any(c["what"].endswith("peak memory / fp32's") and c["verdict"] == "holds" for c in v["checks"])
    write(tmp_path, "r.json", GPU, "2026-01-01T00:00:00", fp16_run(strict=2.6, tf32=2.2))
    assert B.verdicts([tmp_path], ledger.load())["FP16-6"]["verdict"] == "holds"


def test_throughput_claim_and_smoke_runs_ignored(tmp_path):
    "IMPL-10: images per epoch / seconds per round; a run at smoke or sim sizes proves the code runs, it times nothing."
    t = [0.4, 0.41, 0.39, 0.4, 0.42]
    b = bench("loop-overhead", t, {"images_per_epoch": 1024}, task="resnet50_fp16_cl", loop="impl", bs=64)
    write(tmp_path, "a.json", GPU, "2026-01-01T00:00:00", [b])
    write(tmp_path, "b.json", {**GPU, "bench_profile": "sim"}, "2026-03-01T00:00:00", [{**b, "extra_info": {
        **b["extra_info"], "epoch_s": [10.0]}}])
    v = B.verdicts([tmp_path], ledger.load())["IMPL-10"]
    assert v["date"] == "2026-01-01" and v["checks"][0]["value"] == pytest.approx(1024 / 0.4), v
    assert v["verdict"] == "does not hold" and v["checks"][0]["unit"] == "img/s", v["summary"]


def test_unreadable_results_name_the_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        B.load([tmp_path])


def test_a_run_cut_short_is_read_from_its_json_lines(tmp_path):
    "A results folder with records.jsonl and no benchmark JSON: machine, commit and date from the folder's name."
    d = tmp_path / "2026-05-01_nvidia-h100_1234abc"
    d.mkdir()
    on, em = rounds(20, drift=0.1)
    d.joinpath("records.jsonl").write_text("\n".join(json.dumps(
        {"group": "embedding-vs-onehot", "params": {"vocab": 10_000, "method": m}, "epoch_s": t, "device": "cuda",
         "profile": "gpu"}) for m, t in (("embedding", em), ("onehot", on))))
    (run,) = B.load([tmp_path])
    assert (run.machine, run.commit, run.date, run.device) == ("nvidia-h100", "1234abc", "2026-05-01", "cuda")
    assert B.measure("CF-23", run)["verdict"] == "holds"


# ---------------------------------------------------------------- staleness
def test_stale_when_impl_changed_since_the_commit(tmp_path):
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    (tmp_path / "impl").mkdir()
    (tmp_path / "impl" / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD").strip()
    (tmp_path / "impl" / "a.py").write_text("x = 2\n")
    (tmp_path / "README").write_text("docs only\n")
    git("add", ".")
    git("commit", "-qm", "two")
    second = git("rev-parse", "HEAD").strip()
    run = lambda c, tree=None: B.Run("r.json", "2026-01-01", c, "m", "cuda", tree=tree)
    stale, why = B.staleness(run(first), tmp_path)
    assert stale is True and "impl/a.py" in why and first[:7] in why, why
    assert B.staleness(run(second), tmp_path)[0] is False
    assert B.staleness(run("0" * 40), tmp_path)[0] is None
    assert B.staleness(run(None, B.tree_hash(tmp_path)), tmp_path)[0] is False, "same code hash: fresh"


def test_tree_hash_is_the_benches_one():
    pytest.importorskip("torch")
    from benches.conftest import tree_hash
    assert B.tree_hash() == tree_hash()


# ---------------------------------------------------------------- the committed H200 run
def test_the_committed_h200_run_gives_six_verdicts():
    "results/2026-11-27_nvidia-h200_3192aeb measured all six (results.md: FP16-6 resnet50 2.34x strict, 1.15x TF32)."
    vs = B.verdicts([ROOT / "results" / "2026-11-27_nvidia-h200_3192aeb"], ledger.load())  # that run alone
    assert set(vs) == set(B.CLAIMS), sorted(vs)
    for cid, v in vs.items():
        assert v["machine"] == "NVIDIA H200" and v["commit"] == "3192aeb" and v["verdict"] in B.VERDICTS, (cid, v)
    f = {c["baseline"]: round(c["value"], 2) for c in vs["FP16-6"]["checks"] if c["baseline"]}
    assert f == {B.STRICT: 2.34, B.TF32: 1.15} and vs["FP16-6"]["verdict"] == "depends on the baseline", f
    assert vs["CF-23"]["verdict"] == "does not hold", vs["CF-23"]["summary"]  # 1.6x at n = 1e4 (results.md)
    assert vs["IMPL-10"]["checks"][0]["value"] == pytest.approx(2450, abs=5), vs["IMPL-10"]["summary"]


# ---------------------------------------------------------------- through the claims plugin
LEDGER = '''
[[claim]]
id = "CF-23"
section = "Toy benchmarks"
lines = []
quote = ""
statement = "embedding >= 10x faster than one-hot"
kind = "benchmark"
needs = []

[[claim]]
id = "IMPL-10"
section = "Toy benchmarks"
lines = []
quote = ""
statement = "2800 img/s"
kind = "benchmark"
needs = ["cuda"]

[[claim]]
id = "T-1"
section = "Toy basics"
lines = []
quote = ""
statement = "1 + 1 == 2"
kind = "exact"
needs = []
'''


@pytest.fixture
def toy(pytester, monkeypatch, tmp_path):
    pytester.makefile(".toml", claims=LEDGER)
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n  claim: c\n  cuda: c\n  real_data: r\n  pretrained: p\n  slow: s\n")
    pytester.makepyfile(test_toy='import pytest\n@pytest.mark.claim("T-1")\n'
                                 'def test_a(backend):\n    assert 1 + 1 == 2\n')
    store = tmp_path / "store"
    monkeypatch.setenv(B.ENV, str(store))
    return pytester, store, ("--claims-ledger", str(pytester.path / "claims.toml"), "--backend", "impl",
                             "-p", "no:cacheprovider")


def test_plugin_shows_measured_with_the_verdict(toy):
    p, store, args = toy
    write(store, "a.json", CPU, "2026-01-01T00:00:00", emb_run(12))
    r = p.runpytest(*args, "--claims-json", "out.json", "--claims-strict")
    out = r.stdout.str()
    assert r.ret == 0, out
    rows = {c["id"]: c for c in json.loads((p.path / "out.json").read_text())["claims"]}
    assert rows["CF-23"]["results"] == {"impl": "measured"}, rows["CF-23"]
    v = rows["CF-23"]["benchmark"]
    assert v["verdict"] == "holds" and v["machine"] == "CPU Test CPU x2" and v["commit"] == "abc1234", v
    assert v["checks"][0]["lo"] <= v["checks"][0]["value"] <= v["checks"][0]["hi"]
    assert "holds on CPU Test CPU x2 at abc1234 (2026-01-01)" in rows["CF-23"]["reasons"]["impl"]
    assert rows["IMPL-10"]["results"] == {"impl": "untested"} and "benchmark" not in rows["IMPL-10"]
    assert "CUDA GPU (CPU runs do not count)" in rows["IMPL-10"]["reasons"]["impl"]
    assert "impl measured: holds on CPU Test CPU x2" in out and "1 measured" in out, out


def test_claims_compare_lists_a_changed_verdict(toy):
    p, store, args = toy
    write(store, "a.json", CPU, "2026-01-01T00:00:00", emb_run(12))
    assert p.runpytest(*args, "--claims-json", "base.json").ret == 0
    write(store, "b.json", CPU, "2026-02-01T00:00:00", emb_run(3), commit="def5678")
    r = p.runpytest(*args, "--claims-compare", "base.json")
    out = r.stdout.str()
    assert r.ret == 0, "a verdict is never a regression: performance is not asserted"
    assert "CF-23 [benchmark]: holds -> does not hold" in out and "now CPU Test CPU x2 at def5678" in out, out

