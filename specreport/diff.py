"""Claims diff between two runs: every claim whose result changed, per backend; a pass -> fail is a regression.
A benchmark claim whose measured verdict changed (holds / does not hold / undecided / depends on the baseline) is
listed under the backend name "benchmark", with the run it comes from now; it is never a regression (performance is
not asserted).

`compare(baseline, current)` takes two claims JSON documents (paths, dicts as written by `--claims-json`,
or lists of rows as `spec.plugin.rows` returns) and returns a `Diff`. `python -m specreport diff BASE NEW`
prints it and exits 1 on a regression; `pytest spec --claims-compare BASE` does the same (spec/compare.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ABSENT = "absent"  # the claim (or backend) is not in that run


@dataclass(frozen=True)
class Change:
    id: str
    backend: str
    before: str
    after: str
    reason: str = ""  # the current run's reason (why it failed, was skipped...)

    @property
    def regression(self) -> bool:
        "A claim that passed in the baseline fails now."
        return self.before == "passed" and self.after == "failed"

    def __str__(self):
        mark = "REGRESSION " if self.regression else ""
        why = f"  ({self.reason})" if self.reason and (self.after != "passed" or self.backend == "benchmark") else ""
        return f"{mark}{self.id} [{self.backend}]: {self.before} -> {self.after}{why}"


@dataclass
class Diff:
    changes: list[Change] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def lines(self) -> list[str]:
        if not self.changes:
            return ["claims diff: no claim changed its result"]
        head = f"claims diff: {len(self.changes)} change(s), {len(self.regressions)} regression(s) (passed -> failed)"
        return [head] + ["  " + str(c) for c in sorted(self.changes, key=lambda c: (not c.regression, c.id, c.backend))]

    def __str__(self):
        return "\n".join(self.lines())


def load_rows(doc) -> list[dict]:
    "Rows from a path to a claims JSON, its parsed dict, or a list of rows."
    if isinstance(doc, (str, Path)):
        p = Path(doc)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"claims JSON not found: {p}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON: {e}") from None
    rows = doc.get("claims") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "id" in r and "results" in r for r in rows):
        raise ValueError("not a claims JSON: expected {'claims': [{'id': ..., 'results': {...}}, ...]}")
    return rows


def compare(baseline, current) -> Diff:
    "Every (claim, backend) whose status differs between `baseline` and `current` (claims JSON: path, dict or rows)."
    base = {r["id"]: r for r in load_rows(baseline)}
    cur = {r["id"]: r for r in load_rows(current)}
    out = []
    for cid in list(base) + [c for c in cur if c not in base]:
        b, c = base.get(cid, {}), cur.get(cid, {})
        backends = list(dict.fromkeys([*b.get("results", {}), *c.get("results", {})]))
        for be in backends:
            s0, s1 = b.get("results", {}).get(be, ABSENT), c.get("results", {}).get(be, ABSENT)
            if s0 != s1:
                out.append(Change(cid, be, s0, s1, c.get("reasons", {}).get(be, "") or ""))
        v0, v1 = (r.get("benchmark") or {} for r in (b, c))
        if v0.get("verdict") and v1.get("verdict") and v0["verdict"] != v1["verdict"]:
            where = lambda v: f"{v.get('machine')} at {v.get('commit') or '?'} ({v.get('date')})"
            out.append(Change(cid, "benchmark", v0["verdict"], v1["verdict"],
                              f"now {where(v1)}, before {where(v0)}: {v1.get('summary', '')}"))
    return Diff(out)


def main(argv) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m specreport diff",
                                 description="List claims whose result changed; exit 1 when a passed claim now fails.")
    ap.add_argument("baseline", help="claims JSON of the earlier run")
    ap.add_argument("current", help="claims JSON of the new run")
    a = ap.parse_args(argv)
    try:
        d = compare(a.baseline, a.current)
    except (OSError, ValueError) as e:
        ap.exit(2, f"specreport diff: {e}\n")
    print(d)
    return d.exit_code
