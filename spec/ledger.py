"""The claims ledger (spec/claims.toml): loading, validation and per-backend expectations."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

LEDGER = Path(__file__).with_name("claims.toml")
BACKENDS = ("impl", "fastai")
KINDS = {"exact", "property", "statistical", "benchmark"}
NEEDS = {"cuda", "real-data", "pretrained"}
EXPECT = {"holds", "changed", "inaccurate"}
REQUIRED = ("id", "section", "lines", "quote", "statement", "kind", "needs")


class LedgerError(ValueError):
    pass


@dataclass
class Claim:
    id: str
    section: str
    lines: list
    quote: str
    statement: str
    kind: str
    needs: list
    expect: dict = field(default_factory=dict)  # backend -> (status, reason)
    raw: dict = field(default_factory=dict)

    @property
    def backends(self) -> tuple[str, ...]:
        "The implementations the claim is about: our own contract (source = \"impl\") concerns impl alone."
        return tuple(self.raw.get("backends", ("impl",) if self.raw.get("source") == "impl" else BACKENDS))

    def drift(self, backend: str) -> str | None:
        "The strict-xfail reason for `backend`, or None when the lesson's claim is expected to hold there."
        status, reason = self.expect.get(backend, ("holds", ""))
        return None if status == "holds" else f"{status}: {reason}"


def _expect(c: dict, b: str, where: str) -> tuple[str, str]:
    status = c.get(b, "holds")
    if status not in EXPECT:
        raise LedgerError(f"{where}: {b} = {status!r}, expected one of {sorted(EXPECT)}")
    if status == "holds":
        return status, ""
    reason = c.get(f"{b}_reason")
    if not reason:
        raise LedgerError(f"{where}: {b} = {status!r} needs a one-line {b}_reason")
    since = c.get(f"{b}_since")
    return status, f"{reason} (fastai {since})" if since and b == "fastai" else reason


def load(path: Path | str = LEDGER) -> dict[str, Claim]:
    "Parse and validate the ledger; every error names the file and the claim."
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LedgerError(f"claims ledger not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise LedgerError(f"{path}: not valid TOML: {e}") from None
    claims: dict[str, Claim] = {}
    for i, c in enumerate(data.get("claim", []), 1):
        where = f"{path.name}: claim #{i} ({c.get('id', 'no id')})"
        missing = [k for k in REQUIRED if k not in c]
        if missing:
            raise LedgerError(f"{where}: missing field(s) {missing}")
        if c["id"] in claims:
            raise LedgerError(f"{where}: duplicate id {c['id']!r}")
        if c["kind"] not in KINDS:
            raise LedgerError(f"{where}: kind = {c['kind']!r}, expected one of {sorted(KINDS)}")
        if bad := set(c["needs"]) - NEEDS:
            raise LedgerError(f"{where}: unknown needs {sorted(bad)}, expected a subset of {sorted(NEEDS)}")
        if bad := set(c.get("backends", BACKENDS)) - set(BACKENDS):
            raise LedgerError(f"{where}: unknown backends {sorted(bad)}, expected a subset of {list(BACKENDS)}")
        expect = {b: _expect(c, b, where) for b in BACKENDS}
        claims[c["id"]] = Claim(*(c[k] for k in REQUIRED), expect=expect, raw=c)
    if not claims:
        raise LedgerError(f"{path}: no [[claim]] entries")
    return claims


def select(claims: dict[str, Claim], pattern: str | None) -> set[str]:
    "Ids matching --claims PATTERN: comma-separated globs on the id or the section (`LR-*,CF-1?`, `Image*`)."
    if not pattern:
        return set(claims)
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    hit = lambda c: any(fnmatch.fnmatchcase(c.id, p) or fnmatch.fnmatch(c.section, p) for p in pats)
    return {c.id for c in claims.values() if hit(c)}


def id_key(cid: str):
    "Sort key: prefix, then number (LR-2 before LR-10)."
    m = re.match(r"([A-Za-z0-9]+)-(\d+)$", cid)
    return (m.group(1), int(m.group(2))) if m else (cid, 0)
