"""The spec report: one self-contained HTML page of the claims results, the drift since the lesson and the lesson's
figures (`python -m specreport`), and the claims diff between two runs (`python -m specreport diff BASE NEW`).

    build(claims_json=".cache/claims.json", out="report/index.html", compare=None, figures=True) -> Path
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_ledger(path=None):
    "(claims, warning): spec.ledger.load(path), or (None, why) when the ledger cannot be read."
    try:
        from spec import ledger
    except ImportError as e:
        return None, f"spec.ledger could not be imported ({e}): claims shown from the JSON only"
    try:
        return ledger.load(path or ledger.LEDGER), None
    except ledger.LedgerError as e:
        return None, f"ledger not loaded ({e}): claims shown from the JSON only"


def build(claims_json=None, out="report/index.html", compare=None, figures=True, only=None, ledger=None,
          data_dir=None, verbose=False, bench_sources=None):
    """Write the page to `out` and return (path, diff or None). `figures`: True (run the producers), False, or a
    list of figures.Figure already made; `only`: figure names to make; `compare`: a baseline claims JSON;
    `bench_sources`: benchmark results read for verdicts the claims JSON lacks (default results/, .benchmarks/)."""
    from . import diff as _diff
    from . import html
    warnings = []
    doc, source = {"claims": [], "environment": {}}, ""
    p = Path(claims_json) if claims_json else None
    if p is not None and p.is_file():
        doc = json.loads(p.read_text(encoding="utf-8"))
        source = f"{p} (written {datetime.fromtimestamp(p.stat().st_mtime).strftime('%Y-%m-%d %H:%M')})"
    elif p is not None:
        warnings.append(f"claims JSON {p} not found: run the spec with --claims-json {p} first")
    if not doc.get("environment"):
        try:
            from spec.plugin import environment
            doc["environment"] = environment()
        except Exception as e:  # noqa: BLE001 - the header says what it could not learn
            warnings.append(f"environment unknown ({e})")
    claims, why = load_ledger(ledger)
    if why:
        warnings.append(why)
    bench = None
    if claims and any(c.kind == "benchmark" for c in claims.values()):
        try:
            from spec import benchclaims
            bench = benchclaims.verdicts(bench_sources, claims)
        except (ImportError, ValueError, OSError) as e:
            warnings.append(f"benchmark verdicts not read ({e})")
    d = _diff.compare(compare, doc) if compare else None
    if figures is True:
        from . import figures as _figures
        figs = _figures.collect(_figures.Ctx(data_dir, bench_sources), only=only, verbose=verbose)
    else:
        figs = list(figures or [])
    page = html.render(doc, claims, figs, git=html.git_info(ROOT), source=source, warnings=warnings, diff=d,
                       baseline=str(compare or ""), bench=bench)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out, d


def main(argv=None) -> int:
    import argparse
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["diff"]:
        from .diff import main as diff_main
        return diff_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m specreport", description="Write the spec report (one HTML page). "
                                 "`python -m specreport diff BASE.json NEW.json` compares two claims runs instead.")
    ap.add_argument("--claims-json", default=".cache/claims.json", help="the spec's --claims-json output")
    ap.add_argument("--out", default="report/index.html")
    ap.add_argument("--compare", metavar="BASELINE.json", help="add the changes since this run; exit 1 on a regression")
    ap.add_argument("--no-figures", action="store_true", help="skip the figures (no training runs)")
    ap.add_argument("--only", help="comma-separated figure names to make (default: all)")
    ap.add_argument("--ledger", help="claims ledger (default spec/claims.toml)")
    a = ap.parse_args(argv)
    only = a.only.split(",") if a.only else None
    out, d = build(a.claims_json, a.out, a.compare, figures=not a.no_figures, only=only, ledger=a.ledger, verbose=True)
    print(f"specreport: wrote {out} ({out.stat().st_size // 1024} KiB)")
    if d is not None:
        print(d)
        return d.exit_code
    return 0
