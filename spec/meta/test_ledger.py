"""Validate the claims ledger spec/claims.toml (structure, ids, values, quotes).

Stand-alone on purpose: only tomllib, pathlib, re, os and pytest, no project imports, so it runs
with `pytest spec/meta/test_ledger.py --noconftest` before anything else of the project works.
"""
import os
import pathlib
import re

import pytest
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
LEDGER = ROOT / "spec" / "claims.toml"
# `wc -l` says 2187 because the last line has no newline; there are 2188 lines of text
TRANSCRIPT_LINES = 2188

# prefix -> section, in lesson order (the file is ordered by this, then by id number)
SECTIONS = {
    "INT": "Model interpretation",
    "LR": "Learning-rate finder",
    "FT": "Transfer learning and fine_tune",
    "DLR": "Discriminative learning rates",
    "OC": "One-cycle training",
    "ARCH": "Deeper architectures",
    "FP16": "Mixed precision",
    "DATA": "Data: pandas, Datasets, DataBlock",
    "ML": "Multi-label classification",
    "REG": "Image regression",
    "CF": "Collaborative filtering",
    "PET": "Pets dataset",
    "IMPL": "Our contract",
}
ORDER = list(SECTIONS)
# ids of the research catalog (../shared/claims-catalog.md): they must keep existing with these numbers
CATALOG = {"INT": 5, "LR": 12, "FT": 11, "DLR": 4, "OC": 5, "ARCH": 4, "FP16": 8,
           "DATA": 16, "ML": 16, "REG": 16, "CF": 20, "PET": 4}
IMPL_REQUIRED = 12

REQUIRED = {"id", "section", "lines", "source", "quote", "statement", "kind", "needs", "fastai"}
OPTIONAL = {"fastai_since", "fastai_reason", "impl", "impl_reason"}
SOURCES = {"transcript", "fastbook", "fastai-source", "impl"}
KINDS = {"exact", "property", "statistical", "benchmark"}
NEEDS = {"cuda", "real-data", "pretrained"}
EXPECT = {"holds", "changed", "inaccurate"}
ID_RE = re.compile(r"^(?P<prefix>[A-Z0-9]+)-(?P<n>[1-9][0-9]*)$")
VERSION_RE = re.compile(r"^(<=)?[0-9]+(\.[0-9]+){1,2}$")


def _norm(s):
    return " ".join(s.split()).casefold()


def _transcript_path():
    env = os.environ.get("LESSON6_TRANSCRIPT")
    cands = ([pathlib.Path(env)] if env else []) + [
        ROOT / "shared" / "lesson6-transcript.txt",
        ROOT.parent / "shared" / "lesson6-transcript.txt",
    ]
    return next((p for p in cands if p.is_file()), None)


@pytest.fixture(scope="module")
def claims():
    with LEDGER.open("rb") as f:
        data = tomllib.load(f)
    assert set(data) == {"claim"}, f"ledger: only [[claim]] tables expected, got top-level keys {sorted(data)}"
    assert isinstance(data["claim"], list) and data["claim"], "ledger: no [[claim]] entries"
    return data["claim"]


def _parse_id(cid):
    m = ID_RE.match(cid)
    assert m, f"malformed id {cid!r} (expected PREFIX-N)"
    assert m["prefix"] in SECTIONS, f"{cid}: unknown prefix {m['prefix']!r}; known: {ORDER}"
    return m["prefix"], int(m["n"])


def test_fields_and_values(claims):
    bad = []
    for c in claims:
        cid = c.get("id", "<no id>")
        keys = set(c)
        if REQUIRED - keys:
            bad.append(f"{cid}: missing {sorted(REQUIRED - keys)}")
            continue
        if keys - REQUIRED - OPTIONAL:
            bad.append(f"{cid}: unknown fields {sorted(keys - REQUIRED - OPTIONAL)}")
        prefix, _ = _parse_id(cid)
        if c["section"] != SECTIONS[prefix]:
            bad.append(f"{cid}: section {c['section']!r}, expected {SECTIONS[prefix]!r}")
        for k in ("quote", "statement", "source", "kind", "fastai"):
            if not isinstance(c[k], str):
                bad.append(f"{cid}: {k} must be a string")
        if not c["statement"].strip() or len(c["statement"]) < 30:
            bad.append(f"{cid}: statement too short to be testable")
        if c["source"] not in SOURCES:
            bad.append(f"{cid}: source {c['source']!r} not in {sorted(SOURCES)}")
        if c["kind"] not in KINDS:
            bad.append(f"{cid}: kind {c['kind']!r} not in {sorted(KINDS)}")
        needs = c["needs"]
        if not isinstance(needs, list) or not set(needs) <= NEEDS or len(set(needs)) != len(needs):
            bad.append(f"{cid}: needs {needs!r} must be a list of distinct values from {sorted(NEEDS)}")
        # backend expectations
        if c["fastai"] not in EXPECT:
            bad.append(f"{cid}: fastai {c['fastai']!r} not in {sorted(EXPECT)}")
        elif c["fastai"] == "holds":
            if "fastai_since" in c or "fastai_reason" in c:
                bad.append(f"{cid}: fastai_since/fastai_reason only allowed when fastai != 'holds'")
        else:
            since, reason = c.get("fastai_since"), c.get("fastai_reason")
            if not isinstance(since, str) or not VERSION_RE.match(since):
                bad.append(f"{cid}: fastai={c['fastai']} needs fastai_since like '2.4' or '<=2.0', got {since!r}")
            if not isinstance(reason, str) or len(reason.strip()) < 15:
                bad.append(f"{cid}: fastai={c['fastai']} needs a one-line fastai_reason")
            elif "\n" in reason:
                bad.append(f"{cid}: fastai_reason must be one line")
        impl = c.get("impl", "holds")
        if impl not in EXPECT:
            bad.append(f"{cid}: impl {impl!r} not in {sorted(EXPECT)}")
        elif impl == "holds":
            if "impl_reason" in c:
                bad.append(f"{cid}: impl_reason only allowed when impl != 'holds'")
        else:
            reason = c.get("impl_reason")
            if not isinstance(reason, str) or len(reason.strip()) < 15 or "\n" in reason:
                bad.append(f"{cid}: impl={impl} needs a one-line impl_reason")
        # lines / source coherence
        lines = c["lines"]
        if not isinstance(lines, list):
            bad.append(f"{cid}: lines must be a list")
        elif lines == []:
            if c["source"] == "transcript":
                bad.append(f"{cid}: source 'transcript' needs transcript lines")
        else:
            if (len(lines) != 2 or not all(isinstance(x, int) for x in lines)
                    or not 1 <= lines[0] <= lines[1] <= TRANSCRIPT_LINES):
                bad.append(f"{cid}: lines {lines!r} must be [first, last] within 1..{TRANSCRIPT_LINES}")
            if c["source"] != "transcript":
                bad.append(f"{cid}: lines given, so source must be 'transcript' (got {c['source']!r})")
            if not c["quote"].strip():
                bad.append(f"{cid}: a transcript claim needs a quote")
        if prefix == "IMPL":
            if c["source"] != "impl" or lines != []:
                bad.append(f"{cid}: IMPL claims have source 'impl' and lines []")
            if c["fastai"] != "holds" or "impl" in c:
                bad.append(f"{cid}: IMPL claims are our contract: fastai/impl expectation must be the default 'holds'")
        elif c["source"] == "impl":
            bad.append(f"{cid}: only IMPL claims have source 'impl'")
    assert not bad, "ledger field errors:\n  " + "\n  ".join(bad)


def test_ids_unique_ordered_and_complete(claims):
    ids = [c["id"] for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate ids: {dup}"
    keys = [(ORDER.index(p), n) for p, n in map(_parse_id, ids)]
    misplaced = [ids[i] for i in range(1, len(keys)) if keys[i] < keys[i - 1]]
    assert not misplaced, f"ledger must be ordered by section (lesson order), then id number; out of order: {misplaced}"
    by_prefix = {}
    for p, n in map(_parse_id, ids):
        by_prefix.setdefault(p, []).append(n)
    for p, count in {**CATALOG, "IMPL": IMPL_REQUIRED}.items():
        missing = sorted(set(range(1, count + 1)) - set(by_prefix.get(p, [])))
        assert not missing, f"catalog/required ids missing: {[f'{p}-{n}' for n in missing]}"
    for p, ns in by_prefix.items():
        assert sorted(ns) == list(range(1, len(ns) + 1)), f"{p}: numbering must be 1..N without gaps, got {sorted(ns)}"


def test_drift_entries_are_explained(claims):
    """Every drift entry names what fastai does now; benchmarks/statistical claims on real data say what they need."""
    for c in claims:
        if c["kind"] == "benchmark" and c["id"].startswith("FP16"):
            assert "cuda" in c["needs"], f"{c['id']}: an fp16 benchmark needs cuda"
        if "real-data" in c["needs"]:
            assert c["kind"] in {"statistical", "exact", "benchmark"}, f"{c['id']}: real-data claim of kind {c['kind']}"


def test_quotes_occur_in_cited_lines(claims):
    path = _transcript_path()
    if path is None:
        pytest.skip("transcript not found (set LESSON6_TRANSCRIPT or provide ../shared/lesson6-transcript.txt)")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == TRANSCRIPT_LINES, f"{path}: expected {TRANSCRIPT_LINES} lines, got {len(lines)}"
    bad = []
    for c in claims:
        if not c["lines"]:
            continue
        first, last = c["lines"]
        text = _norm(" ".join(lines[first - 1:last]))
        if _norm(c["quote"]) not in text:
            bad.append(f"{c['id']}: quote {c['quote']!r} not in lines {first}-{last}")
    assert not bad, "quotes not found in the cited transcript lines:\n  " + "\n  ".join(bad)


def test_size(claims):
    n = len(claims)
    assert 121 + IMPL_REQUIRED <= n <= 200, f"ledger has {n} claims; expected the lesson and our contract (~125-200)"


def _words(s):
    "Lower-case words: quotes compared across line breaks, punctuation and case."
    return " ".join(re.findall(r"[a-z0-9']+", s.lower()))


def test_no_test_module_copies_a_ledger_quote():
    """The ledger is the only claim text (the plugin shows a failing test's claim): no spec module holds a copy of a
    quote, whole or in part (any run of 7 words of a quote, or a quote of 5 or 6 words). Quotes of code (the book's
    calls, such as `moms=(0.95,0.85,0.95)`) are left out: a test calls the same code."""
    claims = tomllib.loads(LEDGER.read_text())["claim"]
    quotes = {c["id"]: c["quote"] for c in claims if c.get("quote") and not re.search(r"[=()\[\]]", c["quote"])}
    runs = set()
    for i, q in quotes.items():
        for part in re.split(r"\.\.\.|…", q):
            w = _words(part).split()
            runs |= {(i, " ".join(w[k : k + 7])) for k in range(max(len(w) - 6, 1)) if len(w) >= 5}
    found = []
    for p in sorted((ROOT / "spec").rglob("*.py")):
        text = f" {_words(p.read_text())} "
        found += [f"{p.relative_to(ROOT)}: {i} '{r}'" for i, r in sorted(runs) if f" {r} " in text]
    assert not found, "ledger quotes copied into spec modules (cite the id instead):\n" + "\n".join(found)
