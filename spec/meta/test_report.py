"""Tests of the spec report (specreport/): the page built from a small synthetic claims run and from the real ledger,
the claims diff and --claims-compare, the figure producers, and the page as headless Chromium renders it."""
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from specreport import build
from specreport import figures as F
from specreport.diff import compare

ROOT = Path(__file__).resolve().parents[2]

LEDGER = '''
[[claim]]
id = "T-1"
section = "Toy basics"
lines = [10, 12]
quote = "one plus one is two"
statement = "1 + 1 == 2"
kind = "exact"
needs = []

[[claim]]
id = "T-2"
section = "Toy basics"
lines = [20, 20]
quote = "the library rounds half up"
statement = "round(2.5) == 3"
kind = "exact"
needs = []
fastai = "changed"
fastai_since = "2.7.0"
fastai_reason = "rounds half to even since the move to banker's rounding"
fastai_instead = "round(2.5) == 2: Python rounds half to even"

[[claim]]
id = "T-3"
section = "Toy GPU"
lines = [30, 31]
quote = "fp16 is faster"
statement = "fp16 epoch time < fp32 epoch time"
kind = "statistical"
needs = ["cuda"]

[[claim]]
id = "T-4"
section = "Toy GPU"
lines = [40, 40]
quote = "not selected in the run"
statement = "never run here"
kind = "property"
needs = []
impl = "inaccurate"
impl_reason = "impl does it differently on purpose"
'''


def row(cid, section, results, reasons=None, tests=("spec/test_toy.py::test_a[impl]",)):
    return {"id": cid, "section": section, "lines": [1, 2], "quote": f"quote {cid}", "statement": f"statement {cid}",
            "kind": "exact", "needs": [], "tests": len(tests), "test_ids": list(tests),
            "expect": {"impl": {"status": "holds", "reason": ""},
                       "fastai": ({"status": "changed", "reason": "rounds half to even (fastai 2.7.0)"} if cid == "T-2"
                                  else {"status": "holds", "reason": ""})},
            "results": results, "reasons": reasons or {b: "" for b in results}}


RUN = {"claims": [row("T-1", "Toy basics", {"impl": "passed", "fastai": "passed"}),
                  row("T-2", "Toy basics", {"impl": "passed", "fastai": "xfailed"},
                      {"impl": "", "fastai": "changed: rounds half to even (fastai 2.7.0)"}),
                  row("T-3", "Toy GPU", {"impl": "skipped", "fastai": "skipped"},
                      {b: "needs a CUDA GPU; none on this machine" for b in ("impl", "fastai")})],
       "environment": {"python": "3.11.2", "torch": "2.14.1", "fastai": "2.8.12", "device": "cpu (2 cores)",
                       "tf32_matmul": False, "backends": ["impl", "fastai"]}}


def synthetic_figures():
    "Every producer on made-up data, plus one figure whose inputs are missing."
    r = np.random.default_rng(0)
    lrs = np.geomspace(1e-7, 10, 100)
    losses = 1 + (np.log10(lrs) + 2) ** 2 / 40
    out = [F.Figure("lr_find", "LR finder", "synthetic", ("LR-*",),
                    F.to_png(F.plot_lr_find(lrs, losses, {"valley": 1e-3, "minimum": 1e-2}))),
           F.Figure("biwi", "BIWI", "synthetic", (),
                    F.to_png(F.plot_biwi([r.integers(0, 255, (48, 64, 3), dtype=np.uint8)] * 2, [[10, 20], [30, 30]],
                                         [[12, 22], [28, 35]]))),
           F.Figure("bench", "Benchmarks", "none yet", (), None,
                    "not available: no benchmark results (run nox -s bench)")]
    return out


class DOM(HTMLParser):
    "ids, <img> and <a> attributes, <html> attributes, every src/href, and tag names of a page."

    def __init__(self, text):
        super().__init__()
        self.ids, self.imgs, self.links, self.urls, self.tags, self.root = set(), [], [], [], set(), {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "a":
            self.links.append(a.get("href"))
        if tag == "html":
            self.root = a
        self.urls += [(tag, k, v) for k, v in attrs if k in ("src", "href", "srcset", "poster", "action") and v]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    (d / "claims.toml").write_text(LEDGER)
    (d / "claims.json").write_text(json.dumps(RUN))
    out, _ = build(d / "claims.json", d / "index.html", figures=synthetic_figures(), ledger=d / "claims.toml")
    return out, out.read_text()


# ---------------------------------------------------------------- the page
def test_every_ledger_id_is_a_row(built):
    _, text = built
    dom = DOM(text)
    for cid in ("T-1", "T-2", "T-3", "T-4"):
        assert f"claim-{cid}" in dom.ids, f"claim {cid} of the ledger has no row (id=claim-{cid}) in the page"
    t4 = text[text.index('id="claim-T-4"'):].split("</tr>")[0]
    assert "not run" in t4, f"T-4 was not in the run; its row should say 'not run': {t4}"


def test_drift_section_lists_drifted_claims_with_version_and_replacement(built):
    _, text = built
    drift = text[text.index('<section id="drift">'):].split("</section>")[0]
    items = re.findall(r'<li id="drift-([^"]+)"', drift)
    assert items == ["T-2", "T-4"], f"drift section should list T-2 (fastai changed) and T-4 (impl inaccurate): {items}"
    t2 = drift.split('id="drift-T-2"')[1].split("</li>")[0]
    for want in ("changed in fastai 2.7.0", "rounds half to even since the move", "round(2.5) == 2", "expected drift"):
        assert want in t2.replace("&#x27;", "'"), f"drift entry for T-2 lacks {want!r}: {t2}"


def test_summary_counts_per_section_and_backend(built):
    _, text = built
    summ = text[text.index('<section id="summary">'):].split("</section>")[0]
    rows = {re.sub("<.*?>", "", m[0]): [int(x) for x in re.findall(r"<td class=\"?n[^>]*>(\d+)</td>", m[1])]
            for m in re.findall(r"<tr><th>(.*?)</th>(.*?)</tr>", summ)}
    # columns: claims, then per backend the statuses present in the run in STATUSES order:
    # passed, skipped, xfailed, not run  (no failed, no untested)
    assert rows["Toy basics"] == [2, 2, 0, 0, 0, 1, 0, 1, 0], rows
    assert rows["Toy GPU"] == [2, 0, 1, 0, 1, 0, 1, 0, 1], rows
    assert rows["all"] == [4, 2, 1, 0, 1, 1, 1, 1, 1], rows


def test_no_external_urls(built):
    _, text = built
    dom = DOM(text)
    bad = [(t, k, v) for t, k, v in dom.urls if re.match(r"\s*(https?:|//|ftp:|file:)", v, re.I)]
    assert not bad, f"the page must open offline; external references: {bad}"
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", text), "CSS refers to an external url()"
    assert "link" not in dom.tags and not re.search(r"<script[^>]+src=", text), "no <link> or external <script>"
    for href in dom.links:
        assert href.startswith("#") and href[1:] in dom.ids, f"broken or external link {href!r}"


def test_every_img_is_a_valid_png_data_uri(built):
    from PIL import Image
    _, text = built
    imgs = DOM(text).imgs
    assert len(imgs) == 2, f"expected the 2 available synthetic figures as <img>, got {len(imgs)}"
    for a in imgs:
        m = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", a["src"])
        assert m, f"<img> src is not a base64 PNG data URI: {a['src'][:60]}"
        raw = base64.b64decode(m.group(1), validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n", "decoded bytes are not a PNG"
        im = Image.open(io.BytesIO(raw))
        im.verify()
        assert im.format == "PNG" and min(im.size) > 50, (im.format, im.size)


def test_missing_figure_shows_a_note(built):
    _, text = built
    fig = text.split('id="fig-bench"')[1].split("</figure>")[0]
    assert "not available: no benchmark results" in fig and "<img" not in fig, fig


def test_real_ledger_every_id_in_page(tmp_path):
    from spec import ledger
    if not ledger.LEDGER.exists():
        pytest.skip(f"{ledger.LEDGER} is not written yet")
    claims = ledger.load()
    out, _ = build(tmp_path / "none.json", tmp_path / "index.html", figures=False)
    dom = DOM(out.read_text())
    missing = [c for c in claims if f"claim-{c}" not in dom.ids]
    assert not missing, f"{len(missing)} ledger claim(s) have no row in the page: {missing[:10]}"
    drifted = {c.id for c in claims.values() if c.drift("impl") or c.drift("fastai")}
    listed = {i.removeprefix("drift-") for i in dom.ids if i.startswith("drift-")}
    assert listed == drifted, f"drift section: missing {sorted(drifted - listed)}, extra {sorted(listed - drifted)}"


# ---------------------------------------------------------------- figures: producers and never crashing
def test_producers_return_figures():
    import matplotlib.figure
    r = np.random.default_rng(0)
    n = 60
    lr = np.stack([np.geomspace(1e-5, 1e-3, n), np.geomspace(1e-4, 1e-2, n)], 1)
    figs = [F.plot_one_cycle(lr, np.full((n, 2), 0.9), per_epoch=20), F.plot_group_lrs(lr, [(0, "frozen")]),
            F.plot_threshold_sweep(np.linspace(0.1, 0.9, 9), r.random(9)),
            F.plot_confusion(np.eye(3) * 5 + 1, ["a", "b", "c"], [("a", "b", 1)]),
            F.plot_collab_losses({"m": {"train": [1, 0.8, 0.6], "valid": [1, 0.9, 0.95]}}),
            F.plot_emb_vs_onehot({"embedding": [(10, 1e-5), (1000, 1e-5)], "onehot": [(10, 1e-5), (1000, 1e-3)]}),
            F.plot_bench_history({"resnet50": {"fp16 over strict fp32": [(0, 2.3)]}}, ["H200\nabc"])]
    for f in figs:
        assert isinstance(f, matplotlib.figure.Figure) and f.axes
        assert F.to_png(f)[:4] == b"\x89PNG"


def test_collect_never_raises_and_says_why(tmp_path):
    """With no fixture data and no benchmark results, every figure is a note naming the reason, not an exception
    (the threshold figure draws its own images, so it needs no fixture folder: left out, it would train)."""
    names = [s.name for s in F.FIGURES if s.name != "threshold"]
    figs = F.collect(F.Ctx(data_dir=tmp_path, bench_dirs=[tmp_path], cache_dir=tmp_path / "cache"), only=names)
    assert [f.name for f in figs] == names
    for f in figs:
        assert f.png is None and f.note.startswith("not available: ") and len(f.note) > 20, (f.name, f.note)


def test_a_broken_producer_becomes_a_note():
    boom = F.Spec("x", "X", "", (), lambda ctx: {}, lambda: 1 / 0)
    f = F.make(boom, F.Ctx(data_dir="."))
    assert f.png is None and "ZeroDivisionError" in f.note


def _bench(group, median, extra=None, **params):
    return {"group": group, "name": "test_x", "fullname": "benches/x.py::test_x", "params": params,
            "stats": {"median": median, "min": median, "max": median, "rounds": 3}, "extra_info": extra or {}}


def test_benchmark_figures_from_pytest_benchmark_json(tmp_path):
    """Saved pytest-benchmark runs in the benches' format (group, params, extra_info) become both benchmark figures:
    the history takes the GPU runs (labelled by machine, commit and date), one panel per arch, even when a CPU run is
    newer; the embedding figure takes the newest run."""
    gpu = {"gpu": "NVIDIA H100 80GB HBM3", "driver": "1", "cuda": "12", "torch": "2", "bench_profile": "gpu"}
    cpu = {"gpu": None, "cpu": {"brand_raw": "Test CPU"}, "cpu_count": 2, "bench_profile": "cpu"}
    for i, (sha, mi) in enumerate((("aaaaaaa1", gpu), ("bbbbbbb2", gpu), ("ccccccc3", cpu))):
        doc = {"datetime": f"2026-01-0{i + 1}T00:00:00", "commit_info": {"id": sha, "dirty": False},
               "machine_info": mi,
               "benchmarks": [*[_bench("fp16-speedup", t, arch=a, precision=p) for a in ("resnet34", "resnet50")
                                for p, t in (("fp32_strict", 2.4 - i / 10), ("fp32", 1.2), ("fp16", 1.0))],
                              *[_bench("embedding-vs-onehot", t, {"steps_per_epoch": 10}, vocab=n, method=m)
                                for n in (10, 1000) for m, t in (("embedding", 1e-4), ("onehot", 1e-6 * n * (i + 1)))]]}
        (tmp_path / f"000{i}_{sha}.json").write_text(json.dumps(doc))
    ctx = F.Ctx(data_dir=tmp_path, bench_dirs=[tmp_path], cache_dir=None)
    kw = F.gather_emb_onehot(ctx)
    assert sorted(kw["series"]) == ["embedding", "onehot"] and kw["run"] == "CPU Test CPU x2 ccccccc 2026-01-03"
    assert np.allclose(sorted(kw["series"]["onehot"]), [(10, 3e-6), (1000, 3e-4)]), kw  # per step: epoch / 10
    h = F.gather_bench_history(ctx)
    assert h["runs"] == ["H100 80GB HBM3\naaaaaaa\n2026-01-01", "H100 80GB HBM3\nbbbbbbb\n2026-01-02"], h["runs"]
    assert list(h["panels"]) == ["resnet34", "resnet50"] and h["band"] == (2, 3)
    assert h["panels"]["resnet50"]["fp16 over strict fp32"] == [(0, pytest.approx(2.4)), (1, pytest.approx(2.3))]
    assert h["panels"]["resnet50"]["fp16 over fp32 (TF32)"] == [(0, pytest.approx(1.2)), (1, pytest.approx(1.2))]
    for s in F.FIGURES:
        if s.name in ("emb_onehot", "bench_history"):
            assert F.make(s, ctx).png is not None, F.make(s, ctx).note


def test_figure_data_is_cached_by_code_and_fixture_folder(tmp_path):
    "A training figure's data is computed once per code and fixture folder; a damaged entry is remade."
    calls = []
    spec = F.Spec("toy", "Toy", "", (), lambda ctx: calls.append(1) or {"x": np.arange(3)}, None)
    ctx = F.Ctx(data_dir=tmp_path / "a", cache_dir=tmp_path / "c")
    (tmp_path / "a").mkdir()
    assert F.data(spec, ctx)["x"].tolist() == [0, 1, 2] and F.data(spec, ctx)["x"].tolist() == [0, 1, 2]
    assert len(calls) == 1, "the second call must come from the cache"
    (entry,) = (tmp_path / "c").glob("toy-*.pkl")
    entry.write_bytes(b"damaged")
    assert F.data(spec, ctx)["x"].tolist() == [0, 1, 2] and len(calls) == 2
    (tmp_path / "b").mkdir()
    F.data(spec, F.Ctx(data_dir=tmp_path / "b", cache_dir=tmp_path / "c"))
    assert len(calls) == 3 and len(list((tmp_path / "c").glob("toy-*.pkl"))) == 1, "another fixture folder: remade"
    F.data(F.Spec("toy", "", "", (), spec.gather, None, cache=False), ctx)
    assert len(calls) == 4, "a benchmark figure (cache=False) is always read afresh"


# ---------------------------------------------------------------- each figure shows what its caption says
def test_benchmark_figures_show_the_committed_h200_run():
    """From results/ alone: the history names the H200 run (machine, commit), one panel per arch with the lesson's
    2-3x band, resnet50 fp16 at 2.34x over strict fp32 and 1.15x over TF32 (results.md); the one-hot product's time
    grows with the vocabulary far faster than the lookup's (CF-23)."""
    ctx = F.Ctx(bench_dirs=[ROOT / "results"], cache_dir=None)
    h = F.gather_bench_history(ctx)
    assert any("H200" in r and "3192aeb" in r for r in h["runs"]), h["runs"]
    assert list(h["panels"]) == ["resnet18", "resnet34", "resnet50"] and h["band"] == (2, 3), h
    assert any("H200" in r and "c46643e" in r for r in h["runs"]), h["runs"]  # the check of 2026-11-29, later
    r50 = {k: round(v[0][1], 2) for k, v in h["panels"]["resnet50"].items()}  # the oldest run: 3192aeb
    assert r50["fp16 over strict fp32"] == 2.34 and r50["fp16 over fp32 (TF32)"] == 1.15, r50
    e = F.gather_emb_onehot(ctx)
    grow = {m: max(pts)[1] / min(pts)[1] for m, pts in e["series"].items()}  # largest vocab / smallest
    assert "H200" in e["run"] and grow["onehot"] > 10 * grow["embedding"] and grow["embedding"] < 2, (e["run"], grow)


_DATA = {}


def figure_data(name):
    "A training figure's data as the report makes it (the same cache: trained once per code change, 1 thread)."
    import torch
    if name not in _DATA:
        spec = next(s for s in F.FIGURES if s.name == name)
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _DATA[name] = F.data(spec, F.Ctx())
        finally:
            torch.set_num_threads(n)
    return _DATA[name]


@pytest.mark.slow
def test_threshold_figure_peaks_inside_above_no_label():
    """ML-16: the lesson's curve peaks in the middle: the best threshold lies inside (0.1, 0.9) and its accuracy beats
    predicting no label at all by at least 0.02 (a model that learned; measured 0.932 vs 0.905)."""
    d = figure_data("threshold")
    t, a = np.asarray(d["thresholds"]), np.asarray(d["accs"])
    best = int(a.argmax())
    assert 0.1 < t[best] < 0.9, f"best threshold {t[best]:.2f} (acc {a[best]:.3f}) at the edge: {a.round(3)}"
    assert a[best] >= d["baseline"] + 0.02, f"best acc {a[best]:.3f} vs no label {d['baseline']:.3f}: learned nothing"
    assert a[0] < d["baseline"] and a[-1] < a[best], "the curve must rise, then fall"


@pytest.mark.slow
def test_lr_find_figure_falls_then_explodes():
    """LR-10/11: the smoothed loss falls well below its start, then rises steeply at the largest LRs; fastai's
    'minimum' suggestion is the LR of the lowest smoothed loss / 10."""
    d = figure_data("lr_find")
    lrs, loss = np.asarray(d["lrs"]), np.asarray(d["losses"])
    i = int(loss.argmin())
    assert 0 < i < len(loss) - 1 and loss[i] < 0.85 * loss[0], f"no fall: first {loss[0]:.3f}, min {loss[i]:.3f}"
    assert loss[-1] > 1.2 * loss[i], f"no explosion at the end: min {loss[i]:.3f}, last {loss[-1]:.3f}"
    assert d["suggestions"]["minimum"] == pytest.approx(lrs[i] / 10, rel=1e-4), (d["suggestions"], lrs[i])
    assert all(lrs[0] <= v <= lrs[-1] for v in d["suggestions"].values()), d["suggestions"]


@pytest.mark.slow
def test_one_cycle_figure_warms_up_then_anneals():
    "OC-1/2: the LR rises from lr_max/25 to lr_max at 25% of the batches, then falls to ~0; momentum mirrors it."
    d = figure_data("one_cycle")
    lr, mom = (np.asarray(d[k])[:, -1] for k in ("lrs", "moms"))
    n, i = len(lr), int(lr.argmax())
    assert abs(i / n - 0.25) <= 1 / d["per_epoch"], f"LR peak at batch {i} of {n}"
    assert lr[i] == pytest.approx(5e-3, rel=1e-3) and lr[0] == pytest.approx(5e-3 / 25, rel=1e-3)
    assert lr[-1] < lr[i] / 1000, f"the LR did not anneal: last {lr[-1]:.2e}"
    assert int(mom.argmin()) == i and mom[0] == pytest.approx(0.95) and mom.min() == pytest.approx(0.85, abs=1e-4)


@pytest.mark.slow
def test_group_lrs_figure_spreads_half_the_lr_after_the_frozen_epoch():
    """DLR-1, FT-3..5: fine_tune(3, base_lr=1e-2): the frozen epoch at slice(1e-2) (groups 1e-3, 1e-3, 1e-2), then
    slice(5e-5, 5e-3): head 5e-3, each group 10x the one before (100x from body to head)."""
    d = figure_data("group_lrs")
    lr, start = np.asarray(d["lrs"]), d["phases"][1][0]
    frozen, unfrozen = lr[:start].max(0), lr[start:].max(0)
    assert frozen == pytest.approx([1e-3, 1e-3, 1e-2], rel=0.02), frozen
    assert unfrozen == pytest.approx([5e-5, 5e-4, 5e-3], rel=1e-3), unfrozen


@pytest.mark.slow
def test_confusion_figure_is_mostly_diagonal():
    "INT-1: the pets classifier (pretrained body) puts most validation images on the diagonal (chance: 1/37)."
    cm = np.asarray(figure_data("confusion")["cm"])
    acc = np.trace(cm) / cm.sum()
    assert acc > 0.5 and acc > 10 / len(cm), f"accuracy {acc:.3f} over {len(cm)} classes"


@pytest.mark.slow
def test_biwi_figure_predicts_near_the_target():
    "REG-16: the fine-tuned body's mean error is below 0.6x that of always predicting the training mean."
    d = figure_data("biwi")
    assert d["err"] < 0.6 * d["mean_err"], f"mean error {d['err']:.0f} px vs the mean predictor's {d['mean_err']:.0f}"
    assert np.asarray(d["targets"]).shape == np.asarray(d["preds"]).shape == (len(d["images"]), 2)


@pytest.mark.slow
def test_collab_figure_bias_model_overfits_weight_decay_holds_back():
    """CF-19: the bias model's training loss falls every epoch while its validation MSE is lowest before the last
    three epochs and ends 2% above it; with wd=0.1 it ends lower."""
    h = figure_data("collab")["histories"]
    tr, va = np.asarray(h["DotProductBias"]["train"]), np.asarray(h["DotProductBias"]["valid"])
    assert (np.diff(tr) < 0).all(), f"train {tr.round(3)}"
    assert va.argmin() < len(va) - 3 and va[-1] > 1.02 * va.min(), f"no overfitting: valid {va.round(3)}"
    assert h["DotProductBias wd=0.1"]["valid"][-1] < va[-1], "weight decay did not hold the overfitting back"


# ---------------------------------------------------------------- the claims diff
def test_diff_lists_changes_and_flags_pass_to_fail(tmp_path):
    new = json.loads(json.dumps(RUN))
    new["claims"][0]["results"]["impl"] = "failed"
    new["claims"][0]["reasons"]["impl"] = "call failed: assert 3 == 2"
    new["claims"][1]["results"]["fastai"] = "failed"  # xfailed -> failed: listed, not a pass->fail regression
    del new["claims"][2]
    d = compare(RUN, new)
    got = {(c.id, c.backend, c.before, c.after) for c in d.changes}
    assert got == {("T-1", "impl", "passed", "failed"), ("T-2", "fastai", "xfailed", "failed"),
                   ("T-3", "impl", "skipped", "absent"), ("T-3", "fastai", "skipped", "absent")}, got
    assert [(c.id, c.backend) for c in d.regressions] == [("T-1", "impl")] and d.exit_code == 1
    assert "REGRESSION T-1 [impl]: passed -> failed  (call failed: assert 3 == 2)" in str(d)
    assert compare(RUN, RUN).exit_code == 0 and not compare(RUN, RUN).changes
    (tmp_path / "a.json").write_text(json.dumps(RUN))
    (tmp_path / "b.json").write_text(json.dumps(new))
    cli = lambda a, b: subprocess.run([sys.executable, "-m", "specreport", "diff", a, b], cwd=ROOT,
                                      capture_output=True, text=True)
    r = cli(tmp_path / "a.json", tmp_path / "b.json")
    assert r.returncode == 1 and "REGRESSION T-1 [impl]" in r.stdout, r.stdout + r.stderr
    r = cli(tmp_path / "b.json", tmp_path / "a.json")
    assert r.returncode == 0 and "T-1 [impl]: failed -> passed" in r.stdout, r.stdout + r.stderr
    r = cli(tmp_path / "a.json", tmp_path / "missing.json")
    assert r.returncode == 2 and "not found" in r.stderr


def test_report_compare_option_adds_the_diff(tmp_path):
    new = json.loads(json.dumps(RUN))
    new["claims"][0]["results"]["fastai"] = "failed"
    (tmp_path / "base.json").write_text(json.dumps(RUN))
    (tmp_path / "new.json").write_text(json.dumps(new))
    out, d = build(tmp_path / "new.json", tmp_path / "i.html", compare=tmp_path / "base.json", figures=False)
    text = out.read_text()
    assert d.exit_code == 1 and 'id="diff"' in text and 'class="reg"' in text and "T-1" in text.split('id="diff"')[1]


PROJECT_TESTS = '''
import os, pytest

@pytest.mark.claim("T-1")
def test_holds(backend):
    assert os.environ.get("BREAK") != "1", "T-1 broke"

@pytest.mark.claim("T-3")
def test_other(backend):
    assert True
'''


def test_claims_compare_option_fails_on_regression(pytester, monkeypatch):
    pytester.makefile(".toml", claims=LEDGER)
    pytester.makeconftest((ROOT / "conftest.py").read_text())  # the real conftest: plugin + compare
    pytester.makeini("[pytest]\nmarkers =\n  claim: c\n  cuda: c\n  real_data: r\n  pretrained: p\n  slow: s\n")
    pytester.makepyfile(test_toy=PROJECT_TESTS)
    args = ("--claims-ledger", str(pytester.path / "claims.toml"), "--backend", "impl", "-p", "no:cacheprovider")
    r = pytester.runpytest(*args, "--claims-json", "base.json")
    assert r.ret == 0 and "claims (4; backend(s) impl)" in r.stdout.str(), "the plugin's table must still print"
    r = pytester.runpytest(*args, "--claims-compare", "base.json")
    assert r.ret == 0 and "no claim changed its result" in r.stdout.str()
    monkeypatch.setenv("BREAK", "1")
    r = pytester.runpytest(*args, "--claims-compare", "base.json", "--deselect", "test_toy.py::test_holds[impl]")
    assert "T-1 [impl]: passed -> untested" in r.stdout.str() and r.ret == 0, "a vanished test is no regression"
    r = pytester.runpytest(*args, "--claims-compare", "base.json")
    out = r.stdout.str()
    assert r.ret == 1 and "REGRESSION T-1 [impl]: passed -> failed" in out, out
    r = pytester.runpytest(*args, "--claims-compare", "nope.json")
    assert r.ret == pytest.ExitCode.USAGE_ERROR and "baseline claims JSON not found" in r.stderr.str()


# ---------------------------------------------------------------- as a person sees it: headless Chromium
BROWSER = next((b for b in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if b), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any network request would fail
         "--virtual-time-budget=10000"]  # let the load handler run before the DOM is dumped


NARROW = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" width="420" height="1600" style="border:0" src="PAGE"></iframe><script>
document.getElementById('f').addEventListener('load', function () {
  var d = this.contentDocument.documentElement, h = document.documentElement;
  ['data-scroll-width', 'data-inner-width', 'data-ready'].forEach(function (k) {
    h.setAttribute(k, d.getAttribute(k));
  });
});
</script></body></html>"""


def chromium(tmp, page, *args):
    if BROWSER is None:
        msg = "chromium is not installed: apt-get install -y chromium (`nox -s report` installs it and runs this)"
        if os.environ.get("SPEC_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + "; SPEC_REQUIRE_BROWSER=1")
        pytest.skip(msg)
    cmd = [BROWSER, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args, Path(page).resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"chromium failed ({r.returncode}): {r.stderr[-2000:]}"
    return r.stdout


def check_in_browser(tmp, page, ids=None):
    "Assert on the page as Chromium renders it: DOM (ids, images loaded, links) and two screenshots."
    from PIL import Image
    dom = DOM(chromium(tmp, page, "--dump-dom", "--window-size=1280,2000"))
    assert dom.root.get("data-ready") == "yes", f"the page's load handler did not run: {dom.root}"
    for cid in ids if ids is not None else [i[6:] for i in DOM(Path(page).read_text()).ids if i.startswith("claim-")]:
        assert f"claim-{cid}" in dom.ids, f"claim {cid} missing from the rendered DOM"
    assert dom.imgs, "no figure images rendered"
    for a in dom.imgs:
        assert a.get("data-loaded") == "yes" and int(a.get("data-natural-width", 0)) > 50, \
            f"figure image {a.get('alt')!r} did not load: {({k: v for k, v in a.items() if k != 'src'})}"
    for href in dom.links:
        assert href and href.startswith("#") and href[1:] in dom.ids, f"broken link {href!r}"
    # headless windows are at least 500 px wide, so the page goes in a 420 px iframe; the harness copies the
    # widths the page's load handler measured there
    harness = tmp / "narrow.html"
    harness.write_text(NARROW.replace("PAGE", Path(page).resolve().as_uri()))
    narrow = DOM(chromium(tmp, harness, "--dump-dom", "--window-size=1280,2000", "--allow-file-access-from-files")).root
    sw, iw = int(narrow.get("data-scroll-width", 0)), int(narrow.get("data-inner-width", 0))
    assert iw == 420 and sw <= iw, f"at 420 px the page overflows horizontally: scrollWidth {sw} > innerWidth {iw}"
    for size in ("1280,2000", "420,1600"):
        shot = tmp / f"shot-{size.replace(',', 'x')}.png"
        chromium(tmp, page, f"--screenshot={shot}", f"--window-size={size}")
        im = Image.open(shot).convert("RGB")
        assert im.size == tuple(map(int, size.split(","))), im.size
        a = np.asarray(im.resize((im.width // 4, im.height // 4)))
        colours = len(np.unique(a.reshape(-1, 3) // 16, axis=0))
        inked = (a.min(-1) < 200).mean()
        assert colours >= 8 and inked > 0.02, f"screenshot {shot} looks blank: {colours} colours, {inked:.1%} inked"


def test_page_in_headless_chromium(built, tmp_path):
    out, _ = built
    check_in_browser(tmp_path, out, ids=["T-1", "T-2", "T-3", "T-4"])


def test_browser_check_catches_a_broken_image_and_overflow(tmp_path):
    "The check above can fail: a page with an undecodable image and a too-wide block is caught."
    from specreport import html
    text = html.render(RUN, None, [F.Figure("bad", "Bad", "", (), b"not a png")])
    text = text.replace("</main>", '<div style="width:900px">wide</div></main>')
    (tmp_path / "bad.html").write_text(text)
    with pytest.raises(AssertionError, match="did not load"):
        check_in_browser(tmp_path, tmp_path / "bad.html", ids=[])
    wide = html.render(RUN, None, synthetic_figures()[:1]).replace("</main>", '<div style="width:900px">w</div></main>')
    (tmp_path / "wide.html").write_text(wide)
    with pytest.raises(AssertionError, match="overflows horizontally"):
        check_in_browser(tmp_path, tmp_path / "wide.html", ids=[])


@pytest.mark.skipif(not os.environ.get("SPEC_REPORT_HTML"),
                    reason="set SPEC_REPORT_HTML=report/index.html (nox -s report does)")
def test_built_report_in_headless_chromium(tmp_path):
    "The real report (nox -s report sets SPEC_REPORT_HTML): every ledger id, every figure loaded, readable narrow."
    page = Path(os.environ["SPEC_REPORT_HTML"])
    assert page.is_file(), f"SPEC_REPORT_HTML={page} does not exist"
    from spec import ledger
    ids = list(ledger.load()) if ledger.LEDGER.exists() else None
    check_in_browser(tmp_path, page, ids=ids)
