"""One self-contained HTML page: header (environment, commit), summary per section and backend, "What changed since
the lesson", the claims table in lesson order, the figures, and (optionally) the diff with a baseline run.

Everything is inline: CSS, a few lines of script (they mark loaded images and the page width, for the browser
check), images as data: URIs. No external URL anywhere, so the page opens offline.
"""
from __future__ import annotations

import html
import re
import subprocess
from collections import Counter
from datetime import datetime, timezone

BACKENDS = ("impl", "fastai")
STATUSES = ("passed", "measured", "failed", "skipped", "xfailed", "untested", "n/a", "not run")
LABEL = {"xfailed": "expected drift", "n/a": "not applicable"}
ENV_KEYS = ("python", "platform", "torch", "torchvision", "fastai", "numpy", "pandas", "hypothesis", "device", "cuda",
            "tf32_matmul", "tf32_cudnn", "matmul_precision", "hypothesis_profile", "backends", "spec_data")

e = lambda s: html.escape(str(s), quote=True)


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(s).lower()).strip("-") or "x"


def git_info(root) -> dict | None:
    "Commit, subject, date and whether the working tree has uncommitted changes; None outside a git checkout."
    def git(*a):
        return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout
    try:
        sha, subject, date = git("log", "-1", "--format=%H%n%s%n%cI").splitlines()[:3]
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return {"commit": sha, "subject": subject, "date": date, "dirty": dirty}


# ---------------------------------------------------------------- rows: the claims JSON merged with the ledger
def merge(doc: dict, ledger: dict | None, bench: dict | None = None) -> list[dict]:
    """The JSON's rows (lesson order, as the plugin writes them) with each claim's ledger entry under `raw`;
    ledger claims the run did not select are added as 'not run' where their section is."""
    rows = [dict(r) for r in doc.get("claims", [])]
    seen = {r["id"] for r in rows}
    for r in rows:
        c = (ledger or {}).get(r["id"])
        r["raw"] = c.raw if c is not None else {}
    for cid, c in (ledger or {}).items():
        if cid in seen:
            continue
        rows.append({"id": cid, "section": c.section, "lines": c.lines, "quote": c.quote, "statement": c.statement,
                     "kind": c.kind, "needs": list(c.needs), "tests": 0, "test_ids": [],
                     "expect": {b: {"status": s, "reason": why} for b, (s, why) in c.expect.items()},
                     "results": {}, "reasons": {}, "raw": c.raw})
    # lesson order: sections as the ledger (else the JSON) first has them; within one, the JSON's order, then the
    # ledger's for claims the run did not select
    order = {cid: i for i, cid in enumerate(ledger or {})}
    sections = list(dict.fromkeys([c.section for c in (ledger or {}).values()] + [r["section"] for r in rows]))
    pos = {r["id"]: i for i, r in enumerate(rows)}
    rows.sort(key=lambda r: (sections.index(r["section"]), pos[r["id"]] if r["id"] in seen else order[r["id"]] + 10**6))
    for r in rows:  # benchmark verdicts (spec.benchclaims) for claims JSON written without them
        if r.get("kind") == "benchmark" and not r.get("benchmark") and (bench or {}).get(r["id"]):
            r["benchmark"] = bench[r["id"]]
        for b in BACKENDS:
            r["results"].setdefault(b, "not run")
            r["reasons"].setdefault(b, "backend not selected in this run" if r["id"] in seen else "not in this run")
    return rows


def drifted(r: dict) -> list[str]:
    "Backends on which the ledger expects the lesson's claim not to hold."
    return [b for b in BACKENDS if (r.get("expect") or {}).get(b, {}).get("status", "holds") != "holds"]


# ---------------------------------------------------------------- pieces
def badge(status: str) -> str:
    return f'<span class="st st-{slug(status)}">{e(LABEL.get(status, status))}</span>'


def lines_ref(lines, source=None) -> str:
    "T:L12-15 for transcript lines, else the claim's source (fastbook, fastai-source, impl)."
    if not lines:
        return "" if source in (None, "transcript") else str(source)
    a, b = (lines[0], lines[-1]) if isinstance(lines, (list, tuple)) else (lines, lines)
    return f"T:L{a}" if a == b else f"T:L{a}\u2013{b}"


def header(env: dict, git: dict | None, meta: dict) -> str:
    g = ("<dd>not a git checkout</dd>" if git is None else
         f'<dd><code>{e(git["commit"][:12])}</code>{" <b>+ uncommitted changes</b>" if git["dirty"] else ""} '
         f'\u2014 {e(git["subject"])} <span class="dim">({e(git["date"])})</span></dd>')
    keys = [k for k in ENV_KEYS if k in env] + [k for k in env if k not in ENV_KEYS]
    val = lambda v: ", ".join(map(str, v)) if isinstance(v, list) else v
    envs = "".join(f"<div><dt>{e(k)}</dt><dd>{e(val(env[k]))}</dd></div>" for k in keys)
    return (f'<header><h1>Lesson 6 as an executable specification</h1>'
            f'<p class="lead">Which of the lesson\'s claims hold on <b>impl</b> (our compact implementation) and on '
            f'<b>fastai</b>, where fastai drifted since the lesson, and the lesson\'s figures from the same code.</p>'
            f'<dl class="meta"><div><dt>commit</dt>{g}</div>'
            f'<div><dt>claims run</dt><dd>{e(meta["source"])}</dd></div>'
            f'<div><dt>report built</dt><dd>{e(meta["built"])}</dd></div></dl>'
            f'<details class="env" open><summary>Environment</summary><dl class="envl">{envs}</dl></details>'
            f'{"".join(f"<p class=warn>{e(w)}</p>" for w in meta.get("warnings", []))}'
            f'<nav><a href="#summary">Summary</a> <a href="#drift">What changed since the lesson</a> '
            f'{"<a href=#benchmarks>Benchmarks</a> " if meta.get("benchmarks") else ""}'
            f'<a href="#claims">Claims</a> <a href="#figures">Figures</a>'
            f'{" <a href=#diff>Diff</a>" if meta.get("diff") else ""}</nav></header>')


def summary(rows: list[dict]) -> str:
    sections = list(dict.fromkeys(r["section"] for r in rows))
    cols = [s for s in STATUSES if any(r["results"][b] == s for r in rows for b in BACKENDS)] or ["passed"]
    head = ("<tr><th rowspan=2>section</th><th rowspan=2>claims</th>"
            + "".join(f'<th colspan={len(cols)} class="bk">{b}</th>' for b in BACKENDS) + "</tr><tr>"
            + "".join(f"<th>{badge(s)}</th>" for _ in BACKENDS for s in cols) + "</tr>")

    def line(name, rs, link=None):
        cells = ""
        for b in BACKENDS:
            n = Counter(r["results"][b] for r in rs)
            cells += "".join(f'<td class="n{" z" if not n[s] else ""} s-{slug(s)}">{n[s]}</td>' for s in cols)
        label = f'<a href="#{link}">{e(name)}</a>' if link else f"<b>{e(name)}</b>"
        return f"<tr><th>{label}</th><td class=n>{len(rs)}</td>{cells}</tr>"

    body = "".join(line(s, [r for r in rows if r["section"] == s], "sec-" + slug(s)) for s in sections)
    return (f'<section id="summary"><h2>Summary</h2><p class="dim">Per section and backend; "expected drift" '
            f'is a strict xfail the ledger expects (the lesson\'s claim no longer holds there).</p>'
            f'<div class="scroll"><table class="sum">{head}{body}{line("all", rows)}</table></div></section>')


def quote(r: dict) -> str:
    return f'<blockquote>{e(r["quote"])}</blockquote>' if r.get("quote") else ""


def _instead(r: dict, b: str) -> str:
    raw = r.get("raw") or {}
    return raw.get(f"{b}_instead") or raw.get(f"{b}_now") or raw.get("instead") or ""


def drift(rows: list[dict]) -> str:
    ds = [r for r in rows if drifted(r)]
    if not ds:
        return ('<section id="drift"><h2>What changed since the lesson</h2><p>No claim is marked changed or '
                'inaccurate in the ledger.</p></section>')
    items = []
    for r in ds:
        raw = r.get("raw") or {}
        parts = []
        for b in drifted(r):
            ex = r["expect"][b]
            since = raw.get(f"{b}_since")
            what = ex["status"] + (f" in fastai {since}" if since and b == "fastai" else "")
            reason = raw.get(f"{b}_reason") or ex.get("reason", "")
            inst = _instead(r, b)
            if not inst and b == "fastai":  # the ledger's fastai_reason says what fastai does instead
                inst, reason = reason, ""
            head = f'<span class="tag">{e(b)}</span> <b>{e(what)}</b>' + (f": {e(reason)}" if reason else "")
            body = f'<div class="instead"><b>Write instead:</b> {e(inst)}</div>' if inst else ""
            parts.append(f'<div class="dr">{head} <span class="now">(tests now: {badge(r["results"][b])})</span>'
                         f'{body}</div>')
        where = ", ".join(x for x in (r["section"], lines_ref(r.get("lines"), raw.get("source"))) if x)
        items.append(f'<li id="drift-{e(r["id"])}"><a href="#claim-{e(r["id"])}" class="cid">{e(r["id"])}</a> '
                     f'<span class="dim">{e(where)}</span>{quote(r)}{"".join(parts)}</li>')
    return (f'<section id="drift"><h2>What changed since the lesson</h2><p class="dim">{len(ds)} claim(s) the '
            f'ledger marks changed or inaccurate; their lesson-faithful tests run as strict xfail, so "now: expected '
            f'drift" confirms the change and "failed" means the library behaves as the lesson said again.</p>'
            f'<ol class="drift">{"".join(items)}</ol></section>')


def _tests(ids: list[str]) -> str:
    if not ids:
        return '<span class="dim">none</span>'
    li = lambda t: f"<li><code>{e(t.removeprefix('spec/'))}</code></li>"
    if len(ids) <= 3:
        return f'<ul class="tests">{"".join(map(li, ids))}</ul>'
    return (f'<details><summary>{len(ids)} tests</summary><ul class="tests">{"".join(map(li, ids))}</ul>'
            f'</details>')


def _where(v: dict) -> str:
    return f'{e(v.get("machine"))} at <code>{e(v.get("commit") or "?")}</code> ({e(v.get("date"))})'


def bench_block(v: dict | None) -> str:
    "A benchmark claim's measured verdict: where and when, stale or not, every bounded quantity, the rest."
    if not v:
        return ""
    stale = (f' <span class="stale">stale: {e(v["stale_why"].removeprefix("stale: "))}</span>' if v.get("stale")
             else f' <span class="dim">{e(v.get("stale_why", ""))}</span>')
    checks = "".join(f"<li>{e(c['text'])}</li>" for c in v.get("checks", []))
    info = "".join(f"<li>{e(i)}</li>" for i in v.get("info", []))
    others = "".join(f"<li>{_where(o)}: {badge(o['verdict'])} {e(o.get('summary', ''))}</li>"
                     for o in v.get("others", []))
    return (f'<div class="bench">{badge(v["verdict"])} measured on {_where(v)}'
            f'{stale}<ul>{checks}</ul>'
            + (f"<details><summary>also measured</summary><ul>{info}</ul></details>" if info else "")
            + (f"<details><summary>other machines</summary><ul>{others}</ul></details>" if others else "")
            + f'<div class="dim">{e(v.get("source", ""))}</div></div>')


def benchmarks(rows: list[dict]) -> str:
    "The benchmark claims' verdicts in one table: verdict, the measured values, machine, commit, date, staleness."
    bs = [r for r in rows if r.get("kind") == "benchmark"]
    if not bs:
        return ""
    out = []
    for r in bs:
        v = r.get("benchmark")
        if not v:
            out.append(f'<tr><td><a href="#claim-{e(r["id"])}">{e(r["id"])}</a></td><td class=v>{badge("untested")}'
                       f'</td><td colspan=3 class="dim">{e(r["reasons"].get("impl") or "never measured")}</td></tr>')
            continue
        num = lambda v, u: f"{v:.3g}x" if u == "x" else f"{v:.0f} {u}"
        vals = "; ".join(f"{c['what']} {num(c['value'], c['unit'])}"
                         + (f" [{num(c['lo'], c['unit'])}, {num(c['hi'], c['unit'])}]" if c.get("lo") is not None
                            else "")
                         + f" {c['verdict']}" + (f" ({c['rounds_to_decide']} rounds would decide)"
                                                 if c.get("rounds_to_decide") else "")
                         for c in v.get("checks", []))
        out.append(f'<tr><td><a href="#claim-{e(r["id"])}">{e(r["id"])}</a></td><td class=v>{badge(v["verdict"])}'
                   f'</td><td>{e(vals)}</td><td>{e(v["machine"])}<br><code>{e(v.get("commit") or "?")}</code> '
                   f'{e(v["date"])}</td><td>{"<b>stale</b>: " if v.get("stale") else ""}'
                   f'{e(v.get("stale_why", "").removeprefix("stale: "))}</td></tr>')
    return (f'<section id="benchmarks"><h2>Benchmark verdicts</h2><p class="dim">Performance claims are measured in '
            f'benches/ (pytest-benchmark), never asserted in a test. Each verdict comes from the newest run that '
            f'applies (results/ committed runs, .benchmarks/ local history; a claim that needs CUDA never takes a CPU '
            f'run): a 95% bootstrap interval over the run\'s rounds must clear the bound, else it is undecided.</p>'
            f'<div class="scroll"><table class="bv"><tr><th>claim</th><th>verdict</th><th>measured</th>'
            f'<th>machine, commit, date</th><th>code since</th></tr>{"".join(out)}</table></div></section>')


def claims_table(rows: list[dict]) -> str:
    out, section = [], None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            out.append(f'<tr class="sec" id="sec-{slug(section)}"><th colspan=6>{e(section)}</th></tr>')
        res = "".join(
            f'<td class="res">{badge(r["results"][b])}'
            + (f'<div class="why">{e(r["reasons"][b])}</div>' if r["reasons"].get(b)
               and r["results"][b] not in ("passed", "not run", "measured") else "") + "</td>" for b in BACKENDS)
        tags = [r.get("kind", "")] + list(r.get("needs") or []) + [f"drift: {b}" for b in drifted(r)]
        ok = all(r["results"][b] in ("passed", "n/a") for b in BACKENDS)
        tags = "".join(f"<span class=tag>{e(t)}</span>" for t in tags if t)
        out.append(f'<tr id="claim-{e(r["id"])}" class="claim{" ok" if ok else ""}">'
                   f'<td class="cid"><b>{e(r["id"])}</b><div>{tags}</div></td>'
                   f'<td class="quote">{quote(r)}'
                   f'<span class="ln">{e(lines_ref(r.get("lines"), (r.get("raw") or {}).get("source")))}</span></td>'
                   f'<td class="stmt">{e(r.get("statement", ""))}{bench_block(r.get("benchmark"))}</td>{res}'
                   f'<td>{_tests(r.get("test_ids") or [])}</td></tr>')
    return (f'<section id="claims"><h2>Claims</h2><p class="dim">In lesson order; quote and transcript line, the '
            f'testable statement, the result per backend with the reason of every skip, xfail and failure, and the '
            f'tests that check it. <label><input type="checkbox" id="hide-ok"> hide claims passed on both</label></p>'
            f'<div class="scroll"><table class="claims"><thead><tr><th>claim</th><th>lesson says</th><th>statement</th>'
            f'<th>impl</th><th>fastai</th><th>tests</th></tr></thead><tbody>{"".join(out)}</tbody></table></div>'
            f'</section>')


def figures_section(figs, ids=()) -> str:
    items = []
    for f in figs:
        cl = ", ".join(f'<a href="#claim-{e(c)}">{e(c)}</a>' if c in ids else e(c) for c in f.claims)
        body = (f'<img src="{f.data_uri}" alt="{e(f.title)}">' if f.png is not None
                else f'<div class="na">{e(f.note or "not available")}</div>')
        wide = " class=wide" if f.wide and f.png is not None else ""
        items.append(f'<figure id="fig-{slug(f.name)}"{wide}>{body}<figcaption><b>{e(f.title)}.</b> {e(f.caption)}'
                     f'{f" <span class=dim>Claims {cl}.</span>" if cl else ""}</figcaption></figure>')
    if not items:
        items = ['<p class="dim">Figures were not built for this page (--no-figures).</p>']
    return (f'<section id="figures"><h2>Figures</h2><p class="dim">Made by small seeded runs of impl on the fixture '
            f'datasets (CPU; their data cached under .cache/specreport/ until impl/, fixtures/ or specreport/ change) '
            f'and from the benchmark results (results/, .benchmarks/). Each figure\'s effect is asserted on its data '
            f'in spec/meta/test_report.py.</p><div class="figs">{"".join(items)}</div></section>')


def diff_section(d, baseline) -> str:
    if d is None:
        return ""
    rows = "".join(f'<tr class="{"reg" if c.regression else ""}"><td><a href="#claim-{e(c.id)}">{e(c.id)}</a></td>'
                   f"<td>{e(c.backend)}</td><td>{badge(c.before)}</td><td>{badge(c.after)}</td>"
                   f'<td>{"<b>regression</b> " if c.regression else ""}{e(c.reason)}</td></tr>'
                   for c in sorted(d.changes, key=lambda c: (not c.regression, c.id, c.backend)))
    table = (f'<div class="scroll"><table class="diff"><tr><th>claim</th><th>backend</th><th>before</th><th>now</th>'
             f'<th></th></tr>{rows}</table></div>' if rows else "<p>No claim changed its result.</p>")
    return (f'<section id="diff"><h2>Changes since {e(baseline)}</h2><p>{len(d.changes)} change(s), '
            f'{len(d.regressions)} regression(s) (passed \u2192 failed).</p>{table}</section>')


CSS = """
:root{--fg:#1f2328;--dim:#59636e;--line:#d0d7de;--bg2:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--drift:#9a6700;--skip:#57606a}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1280px;margin:0 auto;padding:1rem 1.25rem 3rem}
h1{font-size:1.6rem;margin:.2rem 0 .4rem}h2{font-size:1.3rem;margin:2rem 0 .5rem;border-bottom:1px solid var(--line)}
.lead{margin:.2rem 0 .8rem;max-width:60rem}.dim{color:var(--dim)}.warn{background:#fff8c5;padding:.4rem .6rem}
code{font:.85em/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:.4rem 0}
dl.meta div,dl.envl div{display:contents}dt{color:var(--dim)}dd{margin:0;overflow-wrap:anywhere}
dl.envl{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,16rem),1fr));gap:.1rem 1rem;margin:.4rem 0}
dl.envl div{display:block}dl.envl dt{display:inline}dl.envl dt:after{content:": "}dl.envl dd{display:inline}
details.env summary{cursor:pointer;color:var(--dim)}
nav{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid var(--line);z-index:2}
nav a{margin-right:1rem;white-space:nowrap;display:inline-block}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.scroll{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse}th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
table.sum td.n{text-align:right;font-variant-numeric:tabular-nums}table.sum td.z{color:#c4c9cf}
table.sum th.bk{text-align:center;border-left:2px solid var(--line)}
table.claims{min-width:1000px;width:100%}table.claims tr.sec th{background:var(--bg2);font-size:1.05rem;padding:.5rem}
td.cid{min-width:6.5rem;max-width:9rem}td.cid b{white-space:nowrap}
td.quote{min-width:14rem;max-width:22rem}td.stmt{min-width:16rem;max-width:26rem}
td.res{min-width:8rem;max-width:16rem}td.res .why{font-size:.82em;color:var(--dim);margin-top:.2rem;
overflow-wrap:anywhere}
blockquote{margin:0;font-style:italic}blockquote:before{content:"\\201C"}blockquote:after{content:"\\201D"}
.ln{font-size:.8em;color:var(--dim)}
.tag{display:inline-block;font-size:.72em;border:1px solid var(--line);border-radius:1em;padding:0 .45em;
margin:.15em .2em 0 0;color:var(--dim);white-space:nowrap}
.st{display:inline-block;font-size:.8em;font-weight:600;border-radius:.3em;padding:.05em .45em;white-space:nowrap;
color:#fff;background:var(--skip)}
.st-passed{background:var(--ok)}.st-failed{background:var(--bad)}.st-xfailed{background:var(--drift)}
.st-untested,.st-n-a,.st-not-run,.st-absent{background:#eaeef2;color:var(--dim)}.st-skipped{background:#8c959f}
.st-measured{background:#0969da}.st-holds{background:var(--ok)}.st-does-not-hold{background:var(--bad)}
.st-undecided{background:#8c959f}.st-depends-on-the-baseline{background:var(--drift)}
.bench{margin-top:.4rem;padding:.3rem .5rem;border-left:3px solid #0969da;background:var(--bg2);font-size:.85em}
.bench ul{margin:.2rem 0 0;padding-left:1rem}.bench .stale{color:var(--drift);font-weight:600}
table.bv td{font-size:.9em}table.bv td.v{white-space:nowrap}
ul.tests{margin:0;padding-left:1rem;font-size:.85em}details summary{cursor:pointer}
ol.drift{padding-left:1.2rem}ol.drift li{margin:.6rem 0 1rem}ol.drift blockquote{margin:.2rem 0;color:var(--dim)}
.dr{margin:.15rem 0}.instead{margin:.15rem 0 .15rem 1rem;padding:.2rem .5rem;border-left:3px solid var(--ok);
background:#f0fff4}.now{white-space:nowrap}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,520px),1fr));gap:1.25rem}
figure.wide{grid-column:1/-1}figure{margin:0;border:1px solid var(--line);border-radius:.4rem;padding:.6rem;min-width:0}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{font-size:.88em;margin-top:.4rem}
.na{padding:1.5rem 1rem;background:var(--bg2);color:var(--dim);border:1px dashed var(--line);border-radius:.3rem;
overflow-wrap:anywhere}
table.diff tr.reg td{background:#ffebe9}
body.hide-ok tr.claim.ok{display:none}
@media (max-width:640px){body{font-size:14px}main{padding:.6rem .7rem 2rem}h1{font-size:1.3rem}
dl.meta{grid-template-columns:1fr}nav a{margin-right:.6rem}}
"""

# Marks each image loaded or not, and the page's widths: the browser check (spec/meta/test_report.py) reads them.
SCRIPT = """
document.getElementById('hide-ok').addEventListener('change', function (ev) {
  document.body.classList.toggle('hide-ok', ev.target.checked);
});
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img');
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-loaded', imgs[i].complete && imgs[i].naturalWidth > 0 ? 'yes' : 'no');
    imgs[i].setAttribute('data-natural-width', imgs[i].naturalWidth);
  }
  var d = document.documentElement;
  d.setAttribute('data-scroll-width', d.scrollWidth);
  d.setAttribute('data-body-scroll-width', document.body.scrollWidth);
  d.setAttribute('data-inner-width', window.innerWidth);
  d.setAttribute('data-ready', 'yes');
});
"""


def render(doc: dict, ledger: dict | None = None, figures=(), *, git: dict | None = None, source: str = "",
           warnings=(), diff=None, baseline: str = "", bench: dict | None = None) -> str:
    "The page as a string. `doc`: a claims JSON document; `ledger`: spec.ledger.load(); `figures`: figures.Figure list."
    rows = merge(doc, ledger, bench)
    meta = {"source": source or "(no claims JSON: every claim shown as not run)", "warnings": list(warnings),
            "built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "diff": diff is not None,
            "benchmarks": any(r.get("kind") == "benchmark" for r in rows)}
    body = (header(doc.get("environment") or {}, git, meta) + summary(rows) + drift(rows) + benchmarks(rows)
            + claims_table(rows)
            + figures_section(figures, {r["id"] for r in rows}) + diff_section(diff, baseline))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>Lesson 6 spec report</title><style>{CSS}</style></head>'
            f'<body><main>{body}</main><script>{SCRIPT}</script></body></html>\n')
