"""`fixtures make` is safe to point at any folder (issue 11): it never deletes or overwrites what it did not make
(IMPL-15), detects and rebuilds damage to its own datasets (IMPL-16), and cleans up after itself, with one-line
errors (IMPL-17). Small size, ml-100k and oxford-iiit-pet only, each case on a copy in tmp_path.
"""

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import fixtures
from spec.checks import equal

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("ml-100k", "oxford-iiit-pet")


def files(d):
    "{relative path: bytes} of every file under d (the lock files left out)."
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(Path(d).rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def tmps(d):
    return sorted(p.name for p in Path(d).iterdir() if p.name.startswith(".tmp-"))


def cli(*args):
    "python -m fixtures ARGS in a fresh process: (exit status, stdout, stderr)."
    r = subprocess.run([sys.executable, "-m", "fixtures", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def one_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("fixtures: ") and "Traceback" not in err


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    "ml-100k and oxford-iiit-pet (seed 0, small) as make writes them, and their bytes."
    d = tmp_path_factory.mktemp("pristine")
    for name in NAMES:
        fixtures.make_one(d, name)
    return d, files(d)


@pytest.fixture
def made(pristine, tmp_path):
    "A fresh copy of the pristine datasets."
    d = tmp_path / "data"
    shutil.copytree(pristine[0], d)
    return d


# ---------------------------------------------------------------- IMPL-15: what is not ours is left alone
@pytest.mark.claim("IMPL-15")
@pytest.mark.parametrize("force", [False, True])
def test_foreign_folder_survives(tmp_path, force):
    "The issue's case: DIR laid out like SPEC_DATA (no truth JSON) keeps its files; make fails naming the folder."
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "README_MINE").write_text("mine\n")
    with pytest.raises(fixtures.NotOurs, match=r"ml-100k was not made by fixtures"):
        fixtures.make(tmp_path, force=force)
    equal((tmp_path / "ml-100k" / "README_MINE").read_text(), "mine\n", "README_MINE was touched")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["ml-100k"], f"make wrote {left} before refusing"


@pytest.mark.claim("IMPL-15")
def test_foreign_folder_cli(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "README_MINE").write_text("mine\n")
    rc, out, err = cli("make", tmp_path, "--force")
    assert rc == 1 and one_line(err) and f"{tmp_path / 'ml-100k'}" in err, f"rc {rc}, stderr {err!r}"
    equal((tmp_path / "ml-100k" / "README_MINE").read_text(), "mine\n", "README_MINE was touched")
    assert not out, f"datasets made before refusing: {out!r}"


@pytest.mark.claim("IMPL-15")
@pytest.mark.parametrize("text, msg", [('{"mine": 1}\n', "no 'lesson6-spec fixtures' marker"),
                                       ('{"version": 2, "seed": 0}\n', "marker"),
                                       ("notes\n", "line 1 column 1")])
def test_foreign_truth_file_is_not_overwritten(tmp_path, text, msg):
    "A root/<name>.truth.json we did not write (any JSON, or not JSON: the error names its line) stays as it is."
    p = tmp_path / "ml-100k.truth.json"
    p.write_text(text)
    with pytest.raises(fixtures.NotOurs, match=msg):
        fixtures.make_one(tmp_path, "ml-100k", force=True)
    assert p.read_text() == text, f"{p.name} was overwritten"
    assert not (tmp_path / "ml-100k").exists(), "made ml-100k beside a foreign truth file"


@pytest.mark.claim("IMPL-15")
def test_files_added_to_our_folder_are_kept(made):
    "Files we did not make inside our folder (say a saved model) are never deleted: make refuses, naming them."
    (made / "ml-100k" / "models").mkdir()
    (made / "ml-100k" / "models" / "stage-1.pth").write_bytes(b"weights")
    with pytest.raises(fixtures.NotOurs, match=r"did not make \(models/stage-1\.pth\)"):
        fixtures.make_one(made, "ml-100k", force=True)
    equal((made / "ml-100k" / "models" / "stage-1.pth").read_bytes(), b"weights", "stage-1.pth lost")


@pytest.mark.claim("IMPL-15")
def test_real_data_copied_over_ours_is_kept(made):
    "Our folder whose files were all replaced (the real ml-100k copied over it) no longer looks like ours: kept."
    for f in ("u.data", "u.item"):
        (made / "ml-100k" / f).write_text(f"the real {f}\n")
    with pytest.raises(fixtures.NotOurs, match=r"only 0 of the 2 files"):
        fixtures.make_one(made, "ml-100k")
    equal((made / "ml-100k" / "u.data").read_text(), "the real u.data\n", "u.data was replaced")


@pytest.mark.claim("IMPL-15")
def test_old_format_cache_counts_as_ours(made, pristine):
    "A truth JSON of VERSION 2 (before the marker) with its seed/size stamp marks its folder as ours: rebuilt."
    p = made / "ml-100k.truth.json"
    old = {k: v for k, v in fixtures.truth(made, "ml-100k").items() if k not in ("maker", "content", "digest")}
    p.write_text(json.dumps({**old, "version": 2}))
    (made / "ml-100k" / "u.data").write_text("old generator's output\n")
    fixtures.make_one(made, "ml-100k")
    got = files(made)
    equal(got["ml-100k/u.data"], pristine[1]["ml-100k/u.data"], "the old cache was not rebuilt")
    equal(got["ml-100k.truth.json"], pristine[1]["ml-100k.truth.json"], "old truth JSON not replaced")


# ---------------------------------------------------------------- IMPL-16: damage is detected and rebuilt
def _five_images(d):
    gone = sorted((d / "oxford-iiit-pet" / "images").glob("*.jpg"))[:5]
    for p in gone:
        p.unlink()
    return "5 missing: " + ", ".join(f"images/{p.name}" for p in gone[:3])


def _empty_u_data(d):
    (d / "ml-100k" / "u.data").write_bytes(b"")
    return "1 changed: u.data"


def _flip_a_byte(d):
    p = d / "ml-100k" / "u.item"
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 1  # same size, other content
    p.write_bytes(bytes(b))
    return "1 changed: u.item"


@pytest.mark.claim("IMPL-16")
@pytest.mark.parametrize("damage", [_five_images, _empty_u_data, _flip_a_byte], ids=lambda f: f.__name__[1:])
def test_damage_is_detected_and_rebuilt(made, pristine, damage):
    what = damage(made)
    assert files(made) != pristine[1]
    with pytest.warns(fixtures.FixtureWarning, match=re.escape(what)):
        fixtures.make(made) if damage is _five_images else fixtures.make_one(made, "ml-100k")
    got = {k: v for k, v in files(made).items() if k.split("/")[0].split(".truth")[0] in NAMES}
    diff = sorted(k for k in got.keys() | pristine[1].keys() if got.get(k) != pristine[1].get(k))
    assert not diff, f"not rebuilt byte-identical after '{what}': {diff[:5]}"


@pytest.mark.claim("IMPL-16")
def test_intact_dataset_is_not_rewritten(made):
    "The content hash of an intact dataset matches: nothing is rewritten, no warning."
    stamp = {p: p.stat().st_mtime_ns for p in made.rglob("*")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", fixtures.FixtureWarning)
        for name in NAMES:
            fixtures.make_one(made, name)
    equal(stamp, {p: p.stat().st_mtime_ns for p in made.rglob("*")}, "an intact dataset was rewritten")


# ---------------------------------------------------------------- IMPL-17: cleanup and one-line errors
def _boom(exc):
    def make(dest, seed, size):
        (Path(dest) / "u.data").write_text("half written\n")
        raise exc

    return make


@pytest.mark.claim("IMPL-17")
@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError("disk full")], ids=["interrupt", "error"])
@pytest.mark.parametrize("kw", [{"seed": 1}, {"force": True}], ids=["other-seed", "force"])
def test_interrupted_make_leaves_the_previous_dataset(made, pristine, monkeypatch, exc, kw):
    monkeypatch.setattr(fixtures.DATASETS["ml-100k"], "make", _boom(exc))
    with pytest.raises(exc if isinstance(exc, type) else type(exc)):
        fixtures.make_one(made, "ml-100k", **kw)
    assert not tmps(made), f"left {tmps(made)}"
    equal(files(made), pristine[1], "the previous dataset was changed")


@pytest.mark.claim("IMPL-17")
def test_interrupted_swap_puts_the_previous_copy_back(made, pristine, monkeypatch):
    "Stopped between moving the old copy aside and moving the new one in: the old copy goes back."
    rename = Path.rename

    def stop(self, target):
        if re.fullmatch(r"\.tmp-ml-100k-\d+", self.name) and Path(target).name == "ml-100k":  # the new copy going in
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", stop)
    with pytest.raises(KeyboardInterrupt):
        fixtures.make_one(made, "ml-100k", seed=1)
    assert not tmps(made), f"left {tmps(made)}"
    equal(files(made), pristine[1], "the previous dataset was changed")


@pytest.mark.claim("IMPL-17")
def test_stale_temporaries_of_dead_makers_are_removed(made):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # a pid that is gone
    dead = [f".tmp-ml-100k-{p.pid}", f".tmp-ml-100k-{p.pid}.json", f".tmp-ml-100k-{p.pid}.old"]
    (made / dead[0]).mkdir()
    (made / dead[0] / "u.data").write_text("half written\n")
    (made / dead[1]).write_text("{}")
    (made / dead[2]).mkdir()
    keep = [".tmp-ml-100k-1", ".tmp-notes", ".tmp-ml-100k-x"]  # pid 1 is alive; the others are not our naming
    for k in keep:
        (made / k).mkdir()
    fixtures.make_one(made, "ml-100k")
    assert tmps(made) == sorted(keep), f"dead pid {p.pid}'s temporaries: {tmps(made)}"


@pytest.mark.claim("IMPL-17")
def test_a_truth_json_put_in_while_we_look_is_not_refused(made, monkeypatch):
    """Another maker's first copy goes in between our reading the (missing) truth JSON and finding the folder, and it
    finishes before we look for its temporaries: busy (judged again under the lock), not NotOurs. Until stop 21 this
    refused one of test_concurrent_makers' three processes now and then."""
    tp = fixtures.truth_path(made, "ml-100k")
    kept = tp.read_bytes()
    tp.unlink()  # as before the first copy's truth JSON is in
    read = fixtures._our_truth

    def late(root, name):
        t = read(root, name)
        tp.write_bytes(kept)  # the other maker's tj.replace(tp), just after we read
        return t

    monkeypatch.setattr(fixtures, "_our_truth", late)
    equal(fixtures._state(made, "ml-100k", 0, "small"), ("busy", ""), "a truth JSON that arrived meanwhile")
    monkeypatch.undo()
    equal(fixtures._state(made, "ml-100k", 0, "small")[0], "current", "the copy the other maker put in")
    tp.unlink()  # and a folder that is not ours, with nobody making it, is still refused
    with pytest.raises(fixtures.NotOurs, match="was not made by fixtures"):
        fixtures._state(made, "ml-100k", 0, "small")


@pytest.mark.claim("IMPL-17")
def test_a_copy_swapped_out_while_we_look_is_not_refused(made, monkeypatch):
    """A live maker moves the copy aside (its .old temporary) between our seeing the folder and checking it is one:
    busy, not NotOurs."""
    dest, aside = made / "ml-100k", made / ".tmp-ml-100k-1.old"  # pid 1 is alive
    exists = Path.exists

    def swap(self, *a, **kw):
        there = exists(self, *a, **kw)
        if self == dest and there:
            dest.rename(aside)  # the other maker's dest.rename(old), just after we looked
        return there

    monkeypatch.setattr(Path, "exists", swap)
    try:
        got = fixtures._state(made, "ml-100k", 0, "small")
    finally:
        monkeypatch.undo()
        aside.rename(dest)
    equal(got, ("busy", ""), "a copy moved aside by a live maker")


@pytest.mark.claim("IMPL-17")
def test_concurrent_makers(tmp_path):
    "Three processes make the same dataset at once, swapping seeds 1 and 2: each call succeeds, none is refused."
    code = ("import sys, fixtures\n"
            "for i in range(8): fixtures.make_one(sys.argv[1], 'ml-100k', seed=1 + (i + int(sys.argv[2])) % 2)")
    ps = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(k)], cwd=ROOT) for k in range(3)]
    equal([p.wait() for p in ps], [0, 0, 0], "a concurrent maker failed")
    seed = fixtures.truth(tmp_path, "ml-100k")["seed"]
    assert fixtures._is_current(tmp_path, "ml-100k", seed, "small"), "the last copy is not intact"
    assert not tmps(tmp_path), f"left {tmps(tmp_path)}"


@pytest.mark.claim("IMPL-17")
def test_unwritable_root_is_a_clear_error(tmp_path, monkeypatch):
    "Run as root, chmod cannot make a folder unwritable: a path under a regular file, and a refused mkdir, do."
    f = tmp_path / "a-file"
    f.write_text("x")
    for root in (f, f / "sub"):
        with pytest.raises(NotADirectoryError, match=rf"cannot write to {root}: {f} is a file"):
            fixtures.make(root)
    equal(f.read_text(), "x", "the file was changed")

    def refuse(self, *a, **kw):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(PermissionError, match=rf"cannot write to {tmp_path / 'ro'}: Permission denied"):
        fixtures.make(tmp_path / "ro")


@pytest.mark.claim("IMPL-17")
def test_unwritable_root_cli(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    rc, _, err = cli("make", f / "sub")
    assert rc == 1 and one_line(err), f"rc {rc}, stderr {err!r}"
    assert err.startswith(f"fixtures: cannot write to {f / 'sub'}: "), f"{err!r}"
