"""Readers never return wrong data (IMPL-22..26; issue 11, part 6).

Each malformed input the issue measured is a case here that the old readers got wrong (a wrong value, a message
without the file, or no error). Where the lesson's fastai code takes the same input, a `current` test pins what
fastai does with it (those need fastai: they run under --backend fastai or all). Then fault injection: hypothesis
draws a corruption of a valid fixture file (cut at a byte, a line dropped, a separator swapped, re-encoded, a
stray byte) and the reader must return exactly the rows that survive, or raise ValueError whose message starts with
the file (and line). A new reader joins by adding a Format to FORMATS: it inherits every corruption.
Corruptions that turn valid data into other valid data (a digit changed) are out of scope: no reader can see them.
"""

import io
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from impl import datasets as DS
from impl import readers as R
from spec import backends

FRAME = "frame_00003_rgb.jpg"  # the first frame of person 01 in the fixture
NAMES = ["user", "movie", "rating", "timestamp"]


# ---------------------------------------------------------------- helpers
def rewrite(f, edit, enc="latin-1"):
    "Replace the lines of f (line ends kept) by edit(lines); bytes round-trip through latin-1 unless told."
    lines = f.read_bytes().decode("latin-1").splitlines(keepends=True)
    f.write_bytes("".join(edit(lines)).encode(enc))
    return f


def drop(k):
    return lambda ls: ls[: k - 1] + ls[k:]


def put(k, s):
    return lambda ls: ls[: k - 1] + [s + "\n"] + ls[k:]


def insert(k, s):
    "s becomes line k."
    return lambda ls: ls[: k - 1] + [s + "\n"] + ls[k - 1 :]


def swap(a, b):
    return lambda ls: [ls[b - 1] if i == a - 1 else ls[a - 1] if i == b - 1 else s for i, s in enumerate(ls)]


def cut(k, n):
    "Line k keeps its first n characters and loses its line end; the lines after it are gone (a truncated file)."
    return lambda ls: ls[: k - 1] + [ls[k - 1][:n]]


def rows(df):
    return list(df.itertuples(index=False, name=None))


def lesson_ratings(f):
    return pd.read_csv(f, delimiter="\t", header=None, names=NAMES)  # T:L1718


def lesson_movies(f):
    return pd.read_csv(f, delimiter="|", encoding="latin-1", usecols=(0, 1), names=("movie", "title"), header=None)


@pytest.fixture
def biwi(data_dir, tmp_path):
    "The BIWI fixture copied (a folder to corrupt)."
    return Path(shutil.copytree(data_dir / "biwi_head_pose", tmp_path / "biwi_head_pose"))


@pytest.fixture
def ml(data_dir, tmp_path):
    return Path(shutil.copytree(data_dir / "ml-100k", tmp_path / "ml-100k"))


@pytest.fixture
def pascal(data_dir, tmp_path):
    "train.csv copied, train/ linked: enough for read_pascal and for fastai to load an item."
    d = tmp_path / "pascal_2007"
    d.mkdir()
    shutil.copy(data_dir / "pascal_2007" / "train.csv", d)
    (d / "train").symlink_to(data_dir / "pascal_2007" / "train")
    return d


@pytest.fixture
def fastai(request):
    "The fastai adapter (the lesson's code on fastai), for tests that pin what fastai does."
    if request.config.getoption("--backend") not in ("fastai", "all"):
        pytest.skip("pins fastai's behaviour: run with --backend fastai or all")
    try:
        return backends.get("fastai")
    except backends.BackendUnavailable as e:
        pytest.skip(str(e))


# ---------------------------------------------------------------- IMPL-22: rgb.cal and pose files
BIWI_CASES = {
    "cal: intrinsics row missing": ("rgb.cal", drop(2), r"rgb\.cal:1: the intrinsics block \(lines 1-2\) has 2 row"),
    "cal: extra row": ("rgb.cal", insert(2, "1 2 3 "), r"rgb\.cal:1: the intrinsics block \(lines 1-4\) has 4 row"),
    "cal: not a number": ("rgb.cal", put(1, "517.679 O 320 "), r"rgb\.cal:1: expected 3 numbers, got '517\.679 O 320'"),
    "cal: NaN": ("rgb.cal", put(2, "0 nan 240.5 "), r"rgb\.cal:2: the intrinsics block holds a NaN or infinity"),
    "cal: rows swapped": ("rgb.cal", swap(2, 3), r"rgb\.cal:3: the intrinsics' last row must be 0 0 1"),
    "cal: rotation row missing": ("rgb.cal", drop(8), r"rgb\.cal:7: the rotation block \(lines 7-8\) has 2 row"),
    "cal: no blank line": ("rgb.cal", drop(4), r"rgb\.cal:1: the intrinsics block \(lines 1-4\) has 4 row"),
    "pose: NaN": ("pose", put(5, "nan 81.6727 1037.6847 "), r"pose\.txt:5: the head centre block holds a NaN"),
    "pose: infinity": ("pose", put(2, "0 inf 0 "), r"pose\.txt:2: the rotation block holds a NaN or infinity"),
    "pose: extra row": ("pose", insert(4, "0 0 1 "), r"pose\.txt:1: the rotation block \(lines 1-4\) has 4 row"),
    "pose: cut": ("pose", cut(5, 12), r"pose\.txt:5: the last line has no line end: the file looks truncated"),
    "pose: no centre": ("pose", lambda ls: ls[:4], r"pose\.txt: the file ends before the head centre block"),
}


def _biwi_file(d, which):
    return d / "01" / ("rgb.cal" if which == "rgb.cal" else R.img2pose(FRAME).name)


@pytest.mark.claim("IMPL-22")
@pytest.mark.parametrize("case", list(BIWI_CASES))
def test_bad_cal_or_pose_names_file_and_line(biwi, case):
    which, edit, msg = BIWI_CASES[case]
    rewrite(_biwi_file(biwi, which), edit)
    with pytest.raises(ValueError, match=msg):
        R.get_ctr(biwi / "01" / FRAME)


@pytest.mark.claim("IMPL-22")
def test_cal_structure_read_like_the_lesson(data_dir, biwi):
    "The fixture's rgb.cal gives the lesson's K (FB06 printout); the 640 480 tail is not needed, only tolerated."
    want = [[517.679, 0, 320], [0, 517.679, 240.5], [0, 0, 1]]
    assert R.read_cal(data_dir / "biwi_head_pose/01/rgb.cal").tolist() == want, "IMPL-22: K of rgb.cal"
    f = rewrite(biwi / "01/rgb.cal", lambda ls: ls[:-2])  # without '640 480' genfromtxt(skip_footer=6) loses a row
    assert R.read_cal(f).tolist() == want, "IMPL-22: K without the tail"


@pytest.mark.claim("IMPL-22")
def test_biwi_datasets_reads_every_pose_file_when_built(biwi):
    "A NaN in a pose file is an error naming it when the datasets are built, not a NonFiniteLoss mid-fit."
    rewrite(biwi / "13" / "frame_00349_pose.txt", put(5, "nan 1 900 "))
    with pytest.raises(ValueError, match=r"13/frame_00349_pose\.txt:5: the head centre block holds a NaN"):
        DS.biwi_datasets(biwi)


@pytest.mark.claim("IMPL-22", current=True)
def test_fastai_reads_a_short_cal_and_a_nan_pose_silently(fastai, biwi):
    "The lesson's np.genfromtxt: a missing intrinsics row puts the centre at y = 1; a NaN pose gives a NaN centre."
    rewrite(biwi / "01/rgb.cal", drop(2))
    c = fastai.get_ctr(biwi / "01" / FRAME)
    assert float(c[1]) == 1.0, f"fastai: y of the head centre with a short rgb.cal is {float(c[1])}, not 1.0"
    rewrite(biwi / "13/frame_00349_pose.txt", put(5, "nan 1 900 "))
    c = fastai.get_ctr(biwi / "13/frame_00349_rgb.jpg")
    assert np.isnan(float(c[0])), f"fastai: a NaN in the pose file gave x = {float(c[0])}"


# ---------------------------------------------------------------- IMPL-23: MovieLens
@pytest.mark.claim("IMPL-23")
def test_u_item_saved_as_utf8_reads_the_latin1_titles(data_dir, ml):
    want = lesson_movies(data_dir / "ml-100k/u.item")  # the latin-1 original, read as the lesson does
    rewrite(ml / "u.item", lambda ls: ls, enc="utf-8")
    assert (ml / "u.item").read_bytes() != (data_dir / "ml-100k/u.item").read_bytes(), "fixture: no non-ASCII title"
    got = R.read_movies(ml)
    assert rows(got) == rows(want), f"IMPL-23: UTF-8 u.item read as {got.title[got.movie == 7].tolist()}"


@pytest.mark.claim("IMPL-23")
def test_u_item_one_line_in_utf8_warns_with_the_line(data_dir, ml):
    "A latin-1 file with one line saved as UTF-8 (mixed encodings): read as latin-1, with a warning naming the line."
    lines = (data_dir / "ml-100k/u.item").read_bytes().split(b"\n")
    lines[6] = lines[6].decode("latin-1").encode("utf-8")  # line 7: 'Misérables, Les (1995)'
    lines[0] = lines[0].replace(b"Toy Story", "Toy Stóry".encode("latin-1"))  # so the file is not valid UTF-8
    (ml / "u.item").write_bytes(b"\n".join(lines))
    with pytest.warns(UserWarning, match=r"u\.item:7: title 'MisÃ©rables, Les \(1995\)' holds 'Ã©'"):
        R.read_movies(ml)


@pytest.mark.claim("IMPL-23")
def test_duplicate_movie_id_names_both_lines(ml):
    n = len((ml / "u.item").read_bytes().splitlines())
    rewrite(ml / "u.item", lambda ls: ls + ls[:1])
    with pytest.raises(ValueError, match=rf"u\.item:{n + 1}: movie id 1 is already on line 1"):
        R.read_movielens(ml)
    with pytest.raises(ValueError, match=rf"u\.item:{n + 1}: movie id 1 is already on line 1"):
        DS.collab_dls(ml, bs=8)


@pytest.mark.claim("IMPL-23")
def test_one_title_under_two_ids_still_reads(data_dir):
    "The fixture, like the real u.item, lists one title under two ids: legitimate, kept apart by id."
    m = R.read_movielens(data_dir / "ml-100k")
    t = dict(zip(m.movie, m.title))
    assert t[9] == t[12] == "Chasing Amy (1997)", f"IMPL-23: ids 9 and 12 read as {t.get(9)!r}, {t.get(12)!r}"
    assert len(m) == len(lesson_ratings(data_dir / "ml-100k/u.data")), "IMPL-23: the merge changed the row count"


@pytest.mark.claim("IMPL-23")
@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda ls: [ls[0][:4] + "\xb2" + ls[0][4:], *ls[1:]], r"u\.data:1: expected integers"),  # '²'.isdigit()
        (lambda ls: [ls[0][:4] + "\xff" + ls[0][4:], *ls[1:]], r"u\.data:1: expected integers"),
        (lambda ls: ls[:-1] + [ls[-1][:-4]], r"u\.data:\d+: the last line has no line end: the file looks truncated"),
        (put(3, "7\t3\t4\t88125\x000949"), r"u\.data:3: NUL byte"),
    ],
    ids=["superscript two", "stray 0xff", "cut last line", "NUL"],
)
def test_bad_u_data_names_file_and_line(ml, edit, msg):
    rewrite(ml / "u.data", edit)
    with pytest.raises(ValueError, match=msg):
        R.read_ratings(ml)


@pytest.mark.claim("IMPL-23", current=True)
def test_fastai_u_item_and_u_data_faults(fastai, data_dir, ml):
    "The lesson's pandas code: mojibake from a UTF-8 u.item, repeated ratings, a cut timestamp, no file named."
    rewrite(ml / "u.item", lambda ls: ls, enc="utf-8")
    assert fastai.read_movies(ml).title[6] == "MisÃ©rables, Les (1995)", "fastai: UTF-8 u.item not mojibake"
    shutil.copy(data_dir / "ml-100k/u.item", ml / "u.item")
    r = lesson_ratings(ml / "u.data")
    rewrite(ml / "u.item", lambda ls: ls + ls[:1])
    got = len(fastai.read_movielens(ml))
    assert got == len(r) + (r.movie == 1).sum(), f"fastai: merge with movie 1 twice gave {got} rows, {len(r)} ratings"
    last = r.iloc[-1].tolist()
    rewrite(ml / "u.data", lambda ls: ls[:-1] + [ls[-1][:-4]])
    got = fastai.read_ratings(ml).iloc[-1].tolist()
    assert got == [*last[:3], last[3] // 1000], f"fastai: cut u.data's last row {got}, original {last}"
    rewrite(ml / "u.data", lambda ls: [ls[0][:4] + "\xb2" + ls[0][4:], *ls[1:]])
    with pytest.raises(UnicodeDecodeError) as e:
        fastai.read_ratings(ml)
    assert "u.data" not in str(e.value), f"fastai names the file now: {e.value}"


# ---------------------------------------------------------------- IMPL-24: PASCAL train.csv
PASCAL_CASES = {  # line 4 is 000009.jpg (a validation row), line 5 000012.jpg (a training row)
    "double space": (put(5, "000012.jpg,car  bus,False"), r"train\.csv:5: labels 'car  bus' of 000012\.jpg: expected"),
    "trailing space": (put(5, "000012.jpg,car ,False"), r"train\.csv:5: labels 'car ' of 000012\.jpg: expected"),
    "leading space": (put(5, "000012.jpg, car,False"), r"train\.csv:5: labels ' car' .*single spaces"),
    "tab": (put(5, "000012.jpg,car\tbus,False"), r"train\.csv:5: labels 'car\\tbus' .*single spaces"),
    "quoted comma": (
        put(5, '000012.jpg,"car,bus",False'),
        r"train\.csv:5: labels 'car,bus' of 000012\.jpg hold ','; labels are separated by single spaces",
    ),
    "pipe": (put(5, "000012.jpg,car|bus,False"), r"train\.csv:5: labels 'car\|bus' of 000012\.jpg hold '\|'"),
    "misspelt in validation": (
        put(4, "000009.jpg,hrose person,True"),
        r"train\.csv:4: label 'hrose' occurs only in validation rows \(line\(s\) \[4\]\)",
    ),
    "header only": (lambda ls: ls[:1], r"train\.csv: no rows below the header"),
    "no training rows": (lambda ls: [s.replace(",False", ",True") for s in ls], r"train\.csv: no training rows"),
    "extra field": (put(5, "000012.jpg,car,False,1"), r"train\.csv:5: expected 3 comma-separated fields, got 4"),
    "missing field": (put(5, "000012.jpg,car"), r"train\.csv:5: expected 3 comma-separated fields, got 2"),
    "repeated fname": (insert(7, "000005.jpg,chair,True"), r"train\.csv:7: 000005\.jpg is already on line 2"),
    "NUL (UTF-16)": (lambda ls: "".join(ls).encode("utf-16").decode("latin-1"), r"train\.csv:1: NUL byte"),
}


@pytest.mark.claim("IMPL-24")
@pytest.mark.parametrize("case", list(PASCAL_CASES))
def test_bad_train_csv_names_file_and_line(pascal, case):
    edit, msg = PASCAL_CASES[case]
    rewrite(pascal / "train.csv", edit)
    with pytest.raises(ValueError, match=msg):
        R.read_pascal(pascal)
    with pytest.raises(ValueError, match=msg):  # the dataset builder reads it first: nothing lazy fails later
        DS.pascal_dls(pascal, bs=4)


@pytest.mark.claim("IMPL-24")
def test_train_csv_quoted_and_blank_lines_read_as_pandas(data_dir, pascal):
    "What pd.read_csv accepts and reads right (quoted fields, blank lines, CRLF, a BOM) reads the same."
    want = pd.read_csv(data_dir / "pascal_2007/train.csv")
    text = (
        (pascal / "train.csv").read_text().replace("000009.jpg,horse person,True", '"000009.jpg","horse person",True')
    )
    (pascal / "train.csv").write_bytes(("\ufeff" + text.replace("\n", "\r\n", 3) + "\n\n").encode("utf-8"))
    pd.testing.assert_frame_equal(R.read_pascal(pascal), want, obj="IMPL-24: read_pascal vs pd.read_csv")


@pytest.mark.claim("IMPL-24", current=True)
def test_fastai_train_csv_faults(fastai, pascal):
    "fastai: an empty-string class, a 'car,bus' class, a KeyError for a validation-only label, a TypeError."
    f, orig = pascal / "train.csv", (pascal / "train.csv").read_text()
    rewrite(f, put(5, "000012.jpg,car  bus,False"))
    assert "" in list(fastai.pascal_datasets(pascal).vocab), "fastai: no empty-string class from a double space"
    f.write_text(orig)
    rewrite(f, put(5, '000012.jpg,"car,bus",False'))
    assert "car,bus" in list(fastai.pascal_datasets(pascal).vocab), "fastai: no 'car,bus' class"
    f.write_text(orig)
    rewrite(f, put(4, "000009.jpg,hrose person,True"))
    ds = fastai.pascal_datasets(pascal)
    assert "hrose" not in list(ds.vocab), "fastai: the validation-only label is in the vocab"
    i = list(ds.valid.items.fname).index("000009.jpg")
    with pytest.raises(KeyError, match="hrose"):
        ds.valid[i]
    f.write_text(orig.splitlines(keepends=True)[0])
    with pytest.raises(TypeError):
        fastai.pascal_datasets(pascal)


# ---------------------------------------------------------------- IMPL-25: a file where the folder is expected
FOLDER_CASES = [
    (DS.pets_datasets, "oxford-iiit-pet/images", "the image files"),
    (DS.biwi_datasets, "biwi_head_pose/01/rgb.cal", "the image files"),
    (DS.pascal_datasets, "pascal_2007/train.csv", "train.csv and train/"),
    (DS.collab_dls, "ml-100k/u.data", "u.data and u.item"),
    (R.read_movielens, "ml-100k/u.item", "u.data and u.item"),
    (R.read_pascal, "pascal_2007/train.csv", "train.csv and train/"),
    (R.get_image_files, "pascal_2007/train.csv", "the image files"),
]


@pytest.mark.claim("IMPL-25")
@pytest.mark.parametrize("make, rel, holds", FOLDER_CASES, ids=[f"{m.__name__}-{r}" for m, r, _ in FOLDER_CASES])
def test_a_file_for_the_folder_says_so(data_dir, make, rel, holds):
    f = data_dir / rel
    if f.is_dir():  # a file inside it: the first image
        f = sorted(f.iterdir())[0]
    msg = rf"^{re.escape(str(f))}: is a file, expected the dataset folder \(the one holding {re.escape(holds)}\)"
    with pytest.raises(ValueError, match=msg):
        make(f)


@pytest.mark.claim("IMPL-25", current=True)
def test_fastai_collab_with_a_file(fastai, data_dir):
    with pytest.raises(NotADirectoryError):
        fastai.collab_dls(data_dir / "ml-100k/u.data")


# ---------------------------------------------------------------- IMPL-26: fault injection
@dataclass(frozen=True)
class Format:
    name: str
    rel: str  # the file in the fixtures
    read: Callable  # corrupted file -> rows, through the reader under test
    oracle: Callable  # pristine file -> rows, through the lesson's pandas/numpy code (independent of impl)
    seps: tuple  # its separators (b"\n" included: every format has line ends)
    header: int = 0  # lines before the first row
    rowwise: bool = True  # one row per line; else the whole file is one record
    numeric: bool = False  # numbers only: a stray non-ASCII byte can't be a legitimate character


def _pose_rows(f):
    rot, t = R.read_pose(f)
    return [tuple(rot.ravel()) + tuple(t)]


FORMATS = [
    Format(
        "u.data",
        "ml-100k/u.data",
        lambda f: rows(R.read_ratings(f)),
        lambda f: rows(lesson_ratings(f)),
        (b"\t", b"\n"),
        numeric=True,
    ),
    Format(
        "u.item", "ml-100k/u.item", lambda f: rows(R.read_movies(f)), lambda f: rows(lesson_movies(f)), (b"|", b"\n")
    ),
    Format(
        "train.csv",
        "pascal_2007/train.csv",
        lambda f: rows(R.read_pascal(f.parent)),
        lambda f: rows(pd.read_csv(f)),  # T:L655
        (b",", b" ", b"\n"),
        header=1,
    ),
    Format(
        "rgb.cal",
        "biwi_head_pose/01/rgb.cal",
        lambda f: [tuple(R.read_cal(f).ravel())],
        lambda f: [tuple(np.genfromtxt(f, skip_footer=6).ravel())],  # T:L1360
        (b" ", b"\n"),
        rowwise=False,
        numeric=True,
    ),
    Format(
        "pose",
        "biwi_head_pose/01/frame_00003_pose.txt",
        _pose_rows,
        lambda f: [tuple(np.loadtxt(f, max_rows=3).ravel()) + tuple(np.genfromtxt(f, skip_header=3))],  # T:L1362
        (b" ", b"\n"),
        rowwise=False,
        numeric=True,
    ),
]
SEPS = [b"\t", b"|", b",", b";", b" ", b"\n", b"\r\n", b"\r"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]
KINDS = ["cut", "drop", "swap", "encode", "stray"]


class Pristine(dict):
    def __repr__(self):  # hypothesis prints the test's arguments: not the whole of every file
        return f"Pristine({list(self)})"


@pytest.fixture(scope="module")
def pristine(data_dir):
    "name -> (bytes, rows by the oracle) of each format's fixture file."
    return Pristine({f.name: ((data_dir / f.rel).read_bytes(), f.oracle(data_dir / f.rel)) for f in FORMATS})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


def corrupt(b, fmt, kind, draw):
    "(corrupted bytes, the rows a reader may return given the original rows `want`: a function of want)."
    lines = b.splitlines(keepends=True)
    if kind == "cut":
        k = draw(st.integers(0, len(b) - 1), label="cut at byte")
        n = b[:k].count(b"\n") - fmt.header  # complete rows left
        return b[:k], lambda got, want: got == want[: len(got)] and len(got) >= n if fmt.rowwise else got == want
    if kind == "drop":
        i = draw(st.integers(0, len(lines) - 1), label="dropped line")
        j = i - fmt.header
        keep = lambda want: want[:j] + want[j + 1 :] if fmt.rowwise and j >= 0 else want  # noqa: E731
        return b"".join(lines[:i] + lines[i + 1 :]), lambda got, want: got == keep(want)
    if kind == "swap":
        old = draw(st.sampled_from(fmt.seps), label="separator")
        new = draw(st.sampled_from([s for s in SEPS if s != old]), label="replaced by")
        if draw(st.booleans(), label="whole file"):
            out = b.replace(old, new)
        else:
            i = draw(st.integers(0, len(lines) - 1), label="on line (0-based)")
            out = b"".join(lines[:i] + [lines[i].replace(old, new)] + lines[i + 1 :])
    elif kind == "encode":
        enc = draw(st.sampled_from(ENCODINGS), label="encoding")
        try:
            out = b.decode("latin-1").encode(enc)
        except UnicodeEncodeError:
            assume(False)
    else:  # stray
        k = draw(st.integers(0, len(b)), label="at byte")
        out = b[:k] + bytes([draw(st.integers(0x80, 0xFF), label="stray byte")]) + b[k:]
    return out, lambda got, want: got == want


CASES = [(f, k) for f in FORMATS for k in KINDS if k != "stray" or f.numeric]


@pytest.mark.claim("IMPL-26")
@pytest.mark.parametrize("fmt, kind", CASES, ids=[f"{f.name}-{k}" for f, k in CASES])
@given(data=st.data())
def test_corrupted_file_reads_right_or_names_itself(fmt, kind, pristine, scratch, data):
    b, want = pristine[fmt.name]
    out, ok = corrupt(b, fmt, kind, data.draw)
    f = Path(tempfile.mkdtemp(dir=scratch)) / Path(fmt.rel).name
    f.write_bytes(out)
    try:
        got = fmt.read(f)
    except ValueError as e:
        event("raised")
        m = re.match(rf"{re.escape(str(f))}(?::(\d+))?: \S", str(e))
        assert m, f"IMPL-26: {fmt.name} ({kind}): the error does not start with the file: {e}"
        n = out.count(b"\n") + 1
        assert m[1] is None or 1 <= int(m[1]) <= n, f"IMPL-26: {fmt.name} ({kind}): line {m[1]} of {n}: {e}"
        return
    event("read: same rows" if got == want else "read: fewer rows")
    assert ok(got, want), (
        f"IMPL-26: {fmt.name} ({kind}) read without an error but wrong: {len(got)} rows, "
        f"first differing {next((g, w) for g, w in zip([*got, None], [*want, None]) if g != w)}"
    )


# ---------------------------------------------------------------- the readers' own edges (impl)
@pytest.mark.claim("IMPL-26")
def test_pet_label_edges():
    "The breed is everything before the final _<digits>.jpg of the file's name (not its folders); no match names it."
    assert R.pet_label("images/great_pyrenees_173.jpg") == "great_pyrenees", "FB05 on a path"
    assert R.pet_label(Path("x_1.jpg") / "Abyssinian_12.jpg") == "Abyssinian", "the name only, not the folders"
    assert R.pet_label("a-b_01.png", pat=r"(.+)_\d+\.png$") == "a-b", "pat replaces the lesson's pattern"
    with pytest.raises(ValueError, match=r"^dir/cat\.png: file name does not match '\(\.\+\)_\\\\d\+\.jpg\$', so it "
                                         r"has no pet label$"):
        R.pet_label("dir/cat.png")


@pytest.mark.claim("IMPL-26")
def test_u_data_and_u_item_edges(tmp_path):
    "Ratings 1 and 5 are the ends of 1..5; empty files, wrong field counts and ids are errors naming file and line."
    f, g = tmp_path / "u.data", tmp_path / "u.item"
    f.write_text("1\t2\t1\t10\n3\t4\t5\t20\n")
    assert rows(R.read_ratings(f)) == [(1, 2, 1, 10), (3, 4, 5, 20)], "the file itself (not its folder) reads too"
    assert rows(R.read_ratings(tmp_path)) == [(1, 2, 1, 10), (3, 4, 5, 20)], "the folder reads u.data"
    for bad, msg in [("1\t2\t0\t10\n", r"u\.data:1: rating must be in 1\.\.5, got 0$"),
                     ("1\t2\t3\t10\n1\t2\t6\t10\n", r"u\.data:2: rating must be in 1\.\.5, got 6$"),
                     ("1\t2\t3\n", r"u\.data:1: expected 4 tab-separated fields, got 3: '1\\t2\\t3'$"),
                     ("", r"u\.data: no ratings$")]:
        f.write_text(bad)
        with pytest.raises(ValueError, match=msg):
            R.read_ratings(f)
    line = "|".join(["7", "Toy Story (1995)"] + ["0"] * 22)
    g.write_text(line + "\n")
    assert rows(R.read_movies(g)) == [(7, "Toy Story (1995)")], "one movie"
    g.write_text("7|A|x\n8|B|y")
    assert rows(R.read_movies(g, n_fields=3)) == [(7, "A"), (8, "B")], "n_fields=3; a last line without its end"
    for bad, msg in [("", r"u\.item: no movies$"), (line[2:] + "\n", r"u\.item:1: expected 24 '\|'-separated "
                                                                      r"fields, got 23$"),
                     ("x" + line[1:] + "\n", r"u\.item:1: movie id must be an integer, got 'x'$")]:
        g.write_text(bad)
        with pytest.raises(ValueError, match=msg):
            R.read_movies(g)
    with pytest.raises(FileNotFoundError, match=r"u\.item: no such file$"):
        R.read_movies(tmp_path / "u.item.missing" / "u.item")


@pytest.mark.claim("IMPL-22")
def test_pose_block_after_the_centre_is_an_error(biwi):
    "A pose file holds two blocks; a third one is named by its first line."
    f = _biwi_file(biwi, "pose")
    rewrite(f, lambda ls: ls + ["\n", "1 2 3\n"])
    n = len(f.read_text().splitlines())
    with pytest.raises(ValueError, match=rf"pose\.txt:{n}: unexpected lines after the head centre block$"):
        R.read_pose(f)


@pytest.mark.claim("IMPL-22")
def test_read_cal_result_is_the_callers_and_follows_the_file(biwi):
    "Changing the returned K changes no later read; rewriting rgb.cal (new focal length) is read anew."
    f = biwi / "01/rgb.cal"
    k = R.read_cal(f)
    k[0, 0] = -1.0
    assert R.read_cal(f)[0, 0] == 517.679, "the caller's copy changed what the next read_cal returns"
    rewrite(f, lambda ls: [ls[0].replace("517.679", "600.5"), *ls[1:]])
    assert R.read_cal(f)[0].tolist() == [600.5, 0, 320], "a rewritten rgb.cal is read again"


# ---------------------------------------------------- edges the mutation run found untested (results/mutation.md)
@pytest.mark.claim("IMPL-24")
def test_train_csv_line_ends_inside_quotes_and_cr_only_read_as_pandas(data_dir, pascal):
    """A quoted field holding CR LF keeps it, and a file with old-Mac CR line ends reads, both as pd.read_csv (the
    lesson's reader) reads them."""
    text = (pascal / "train.csv").read_text().replace("000012.jpg,", '"0000\r\n12.jpg",', 1)
    for name, body in [("CR LF inside quotes", text), ("CR line ends", text.replace("\r\n", "").replace("\n", "\r"))]:
        (pascal / "train.csv").write_bytes(body.encode())
        want = pd.read_csv(io.BytesIO(body.encode()))
        pd.testing.assert_frame_equal(R.read_pascal(pascal), want, obj=f"IMPL-24: {name}")


@pytest.mark.claim("IMPL-24")
def test_train_csv_messages_in_full(pascal):
    "The double-space message says why; a validation-only label lists its first 5 lines."
    rewrite(pascal / "train.csv", put(5, "000012.jpg,car  bus,False"))
    with pytest.raises(ValueError, match=r"expected labels separated by single spaces \(a double, leading or trailing "
                                         r"space would make an empty label a class\)$"):
        R.read_pascal(pascal)
    (pascal / "train.csv").write_text("fname,labels,is_valid\na.jpg,dog,False\n"
                                      + "".join(f"v{i}.jpg,zebra,True\n" for i in range(7)))
    with pytest.raises(ValueError, match=r"train\.csv:3: label 'zebra' occurs only in validation rows "
                                         r"\(line\(s\) \[3, 4, 5, 6, 7\]\), so no training row teaches it"):
        R.read_pascal(pascal)


@pytest.mark.claim("IMPL-26")
def test_nul_byte_line_and_separators(tmp_path):
    """A NUL as the very first byte is caught (UTF-16-BE text starts with one) and its line counts a line end at byte
    0; u.data fields are tab-separated only (spaces are not a separator)."""
    f = tmp_path / "u.data"
    for data, line in [("1\t2\t3\t4\n".encode("utf-16-be"), 1), (b"\n1\t2\t3\t4\0\n", 2), (b"\n\n\0", 3)]:
        f.write_bytes(data)
        with pytest.raises(ValueError, match=rf"u\.data:{line}: NUL byte"):
            R.read_ratings(f)
    f.write_text("1 2 3 10\n")
    with pytest.raises(ValueError, match=r"u\.data:1: expected 4 tab-separated fields, got 1"):
        R.read_ratings(f)


@pytest.mark.claim("IMPL-26")
def test_crlf_last_field_and_messages(tmp_path):
    """CR LF line ends: the CR never stays in a value (u.item with n_fields=2 has the title last); a u.data movie
    missing from u.item: the first 5 missing ids and the u.item path."""
    g = tmp_path / "u.item"
    g.write_bytes(b"7|A\r\n8|B\r\n")
    assert rows(R.read_movies(g, n_fields=2)) == [(7, "A"), (8, "B")], "CR LF: a CR left in the title"
    (tmp_path / "u.data").write_text("".join(f"1\t{m}\t3\t10\n" for m in [7, 20, 19, 18, 17, 16, 15]))
    g.write_text("|".join(["7", "A"] + ["0"] * 22) + "\n")
    with pytest.raises(ValueError, match=rf"u\.data: movie id\(s\) \[15, 16, 17, 18, 19\] not in "
                                         rf"{re.escape(str(tmp_path / 'u.item'))}$"):
        R.read_movielens(tmp_path)


@pytest.mark.claim("IMPL-23")
def test_mojibake_warning_points_at_the_caller(tmp_path):
    """The mojibake warning names the line of the caller of read_movies, not a line inside impl (stacklevel). Not run
    by tools/mutate.py (pyproject's [tool.mutmut]): mutmut's trampoline adds a frame, so there it points into impl."""
    g = tmp_path / "u.item"
    g.write_bytes("".join("|".join([i, t] + ["0"] * 22) + "\n" for i, t in [("7", "CafÃ©"), ("8", "Ã©t\xe9")]).encode(
        "latin-1"))  # the lone \xe9 byte is not UTF-8: the file reads as latin-1, and line 1 holds mojibake
    with pytest.warns(UserWarning, match="UTF-8 read as latin-1") as w:
        R.read_movies(g)
    assert w[0].filename == __file__, f"the warning points at {w[0].filename}, not the caller"


@pytest.mark.claim("IMPL-23")
def test_mojibake_warning_never_points_into_impl(tmp_path):
    """The mojibake warning is about the caller's file, so it never points at a line of impl/readers.py (the test
    above pins the caller's line; this one also holds under mutmut's trampoline, which adds a frame)."""
    g = tmp_path / "u.item"
    g.write_bytes("".join("|".join([i, t] + ["0"] * 22) + "\n" for i, t in [("7", "CafÃ©"), ("8", "\xe9")]).encode(
        "latin-1"))  # latin-1 (the lone \xe9 byte), and line 1 holds mojibake
    with pytest.warns(UserWarning, match=r"u\.item:1: title 'CafÃ©' holds 'Ã©': UTF-8 read as latin-1\?") as w:
        R.read_movies(g)
    assert Path(w[0].filename).resolve() != Path(R.__file__).resolve(), f"the warning points into impl: {w[0]}"


@pytest.mark.claim("IMPL-22")
def test_cal_without_final_line_end_and_shallow_head(biwi):
    """rgb.cal needs no final line end (only pose files must end with one); a head 1 mm deep is projected, not
    refused (only tz <= 0 is)."""
    f = biwi / "01/rgb.cal"
    want = R.read_cal(f).tolist()
    f.write_bytes(f.read_bytes().rstrip(b"\n"))
    assert R.read_cal(f).tolist() == want, "rgb.cal without its last line end"
    pose = _biwi_file(biwi, "pose")
    rewrite(pose, lambda ls: [*ls[:4], "30 -20 1\n", *ls[5:]])  # line 5: the head centre tx ty tz
    k = np.array(want)
    got = R.get_ctr(biwi / "01" / FRAME).tolist()
    assert got == pytest.approx([30 * k[0, 0] + k[0, 2], -20 * k[1, 1] + k[1, 2]]), f"tz = 1 mm: {got}"


@pytest.mark.claim("IMPL-26")
def test_no_image_files_message_lists_six_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"no image files found \(extensions \[(.*)\]\.\.\.\)$") as e:
        R.image_files(tmp_path)
    exts = re.search(r"\[(.*)\]", str(e.value))[1].replace("'", "").split(", ")
    assert len(exts) == 6 and exts == sorted(exts) and all(x.startswith(".") for x in exts), exts


@pytest.mark.claim("CF-1")
def test_top_crosstab_defaults_and_order():
    """top_crosstab's defaults keep 15 users and 15 movies; rows run from the most active user down and columns from
    the most rated movie down (not crosstab's sorted order); a cell is the rating of that user for that movie."""
    rng = np.random.default_rng(0)
    users, movies = np.arange(40, 0, -1), np.arange(140, 100, -1)  # ids in the opposite order of their activity
    df = pd.DataFrame([(u, m, int(rng.integers(1, 6))) for k, u in enumerate(users) for m in movies[: 40 - k]],
                      columns=["user", "movie", "rating"])
    ct = R.top_crosstab(df)
    assert ct.shape == (15, 15), f"default shape {ct.shape}"
    assert list(ct.index) == list(users[:15]) and list(ct.columns) == list(movies[:15]), (list(ct.index), ct.columns)
    cell = df[(df.user == users[3]) & (df.movie == movies[5])].rating.item()
    assert ct.loc[users[3], movies[5]] == cell
