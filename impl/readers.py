"""Readers for the lesson's four datasets, on real data and on the miniature fixtures alike.

Malformed input raises ValueError (FileNotFoundError for a missing file) whose message starts with the
file, and the line where there is one: `u.data:17: expected 4 tab-separated fields, got 3`. A reader checks the
whole file before it returns, so it gives exactly the file's data or raises; it never guesses:
- Text is UTF-8 when the bytes are valid UTF-8 (a BOM dropped), else latin-1. The real u.item is latin-1, whose
  accented letters followed by ASCII are never valid UTF-8, so a u.item saved either way reads the same titles.
  NUL bytes (UTF-16, binary) are an error.
- rgb.cal and pose files are parsed by their blank-line-separated blocks, each of an exact shape of finite numbers.
- A last line without its line end, where a cut would change a number (u.data, pose files), is an error (truncated).
- A file given where the dataset folder is expected is an error saying what the folder holds.
"""

import csv
import io
import mimetypes
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTS = {k for k, v in mimetypes.types_map.items() if v.startswith("image/")}
NL = "\n"
PET_RE = r"(.+)_\d+.jpg$"  # FB05
VOC = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]


# ---------------------------------------------------------------- files and text
def dataset_dir(path, holds):
    "`path` as a folder: a file there is an error saying what the folder should hold, a missing one too."
    p = Path(path)
    if p.is_file():
        raise ValueError(f"{p}: is a file, expected the dataset folder (the one holding {holds})")
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such folder")
    return p


def _text(f):
    "The text of f: UTF-8 (BOM dropped) when the bytes are valid UTF-8, else latin-1; a NUL byte is an error."
    try:
        b = Path(f).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{f}: no such file") from None
    if (k := b.find(b"\0")) >= 0:
        i = b.count(b"\n", 0, k) + 1
        raise ValueError(f"{f}:{i}: NUL byte: not a plain text file (UTF-16 or binary?)")
    try:
        return b.decode("utf-8-sig")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def _lines(f, ended=False):
    "(line number, text) of each line of f, line ends dropped; ended: a last line without its line end is an error."
    s = _text(f)
    if ended and s and not s.endswith("\n"):
        raise ValueError(f"{f}:{s.count(NL) + 1}: the last line has no line end: the file looks truncated")
    return [(i, x.removesuffix("\r")) for i, x in enumerate(s.removesuffix("\n").split("\n"), 1)] if s else []


# ---------------------------------------------------------------- files and images
def get_image_files(path, recurse=True):
    "Image files under `path` (by extension's MIME type), in os.walk order like fastai; hidden folders skipped."
    path, out = dataset_dir(path, "the image files"), []
    for p, ds, fs in os.walk(path):
        ds[:] = [d for d in ds if not d.startswith(".")]
        out += [Path(p) / f for f in fs if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTS]
        if not recurse:
            break
    return out


def image_files(path):
    "get_image_files, but an empty result is an error naming the folder (nothing to train on)."
    fs = get_image_files(path)
    if not fs:
        raise ValueError(f"{path}: no image files found (extensions {sorted(IMAGE_EXTS)[:6]}...)")
    return fs


def load_image(f):
    "Open an image file as a fully decoded PIL RGB image (T:L1418); a corrupt or truncated file names itself."
    try:
        with Image.open(f) as im:
            return im.convert("RGB")  # convert() decodes every pixel, so truncation is caught here
    except FileNotFoundError:
        raise FileNotFoundError(f"{f}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{f}: not a readable image ({e})") from e


# ---------------------------------------------------------------- pets
def pet_label(f, pat=PET_RE):
    "The breed in a pets file name: everything before the final `_<digits>.jpg` (FB05 RegexLabeller)."
    m = re.search(pat, Path(f).name)
    if not m:
        raise ValueError(f"{f}: file name does not match {pat!r}, so it has no pet label")
    return m.group(1)


# ---------------------------------------------------------------- PASCAL 2007
def read_pascal(path, classes=None):
    """train.csv (fname,labels,is_valid) of the PASCAL folder `path` as a DataFrame; every row checked. Labels are
    separated by single spaces: an empty label (double, leading or trailing space), a , ; or | inside a label, and a
    label found only in validation rows (fastai's vocab comes from the training rows) are errors."""
    f = dataset_dir(path, "train.csv and train/") / "train.csv"
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no such csv file")
    rd = csv.reader(io.StringIO(_text(f), newline=""), strict=True)
    want, rows, seen, end = ["fname", "labels", "is_valid"], [], {}, 1
    try:
        head = next(rd, [])
        if missing := [c for c in want if c not in head]:
            raise ValueError(f"{f}: missing column(s) {missing}; expected {want}, found {head}")
        for r in rd:
            i, end = end + 1, rd.line_num  # a quoted field may span lines: i is the row's first line
            if r and len(r) != len(head):  # blank lines (r == []) are skipped, as pd.read_csv does
                raise ValueError(f"{f}:{i}: expected {len(head)} comma-separated fields, got {len(r)}: {r}")
            if r:
                rows.append((i, _pascal_row(f, i, dict(zip(head, r)), classes, seen)))
    except csv.Error as e:
        raise ValueError(f"{f}:{rd.line_num}: not a readable csv ({e})") from e
    if not rows:
        raise ValueError(f"{f}: no rows below the header: nothing to train on")
    train = {lb for _, o in rows if not o["is_valid"] for lb in o["labels"].split(" ")}
    if not train:
        raise ValueError(f"{f}: no training rows (is_valid is True on every row)")
    only = {}
    for i, o in rows:
        for lb in o["labels"].split(" "):
            if lb not in train:
                only.setdefault(lb, []).append(i)
    if only:
        lb, ls = next(iter(only.items()))
        raise ValueError(
            f"{f}:{ls[0]}: label {lb!r} occurs only in validation rows (line(s) {ls[:5]}), so no training row "
            f"teaches it (fastai's vocab comes from the training rows); misspelt?"
        )
    df = pd.DataFrame([list(o.values()) for _, o in rows], columns=head)
    df["is_valid"] = df.is_valid.astype(bool)
    return df


def _pascal_row(f, i, o, classes, seen):
    "One row of train.csv, checked; is_valid as a bool."
    fn, lbs = o["fname"], o["labels"]
    if not fn:
        raise ValueError(f"{f}:{i}: empty fname")
    if (j := seen.setdefault(fn, i)) != i:
        raise ValueError(f"{f}:{i}: {fn} is already on line {j}")
    if not lbs.strip():
        raise ValueError(f"{f}:{i}: no labels for {fn}")
    if m := re.search("[,;|]", lbs):  # another list's separator: 'horse,person' would be one class
        raise ValueError(f"{f}:{i}: labels {lbs!r} of {fn} hold {m[0]!r}; labels are separated by single spaces")
    if lbs.split(" ") != lbs.split():
        raise ValueError(
            f"{f}:{i}: labels {lbs!r} of {fn}: expected labels separated by single spaces (a double, leading or "
            "trailing space would make an empty label a class)"
        )
    if classes is not None and (bad := [lb for lb in lbs.split(" ") if lb not in classes]):
        raise ValueError(f"{f}:{i}: unknown label(s) {bad} for {fn}; expected some of {list(classes)}")
    if o["is_valid"] not in ("True", "False"):
        raise ValueError(f"{f}:{i}: is_valid must be True or False, got {o['is_valid']!r}")
    return {**o, "is_valid": o["is_valid"] == "True"}


# ---------------------------------------------------------------- BIWI head pose
def img2pose(f):
    "frame_00003_rgb.jpg -> frame_00003_pose.txt: drop the last 7 letters ('rgb.jpg'), add 'pose.txt' (T:L1343)."
    if not str(f).endswith("rgb.jpg"):
        raise ValueError(f"{f}: not a BIWI frame (expected a name ending in rgb.jpg)")
    return Path(f"{str(f)[:-7]}pose.txt")


CAL = [("intrinsics", 3, 3), ("distortion", 1, 4), ("rotation", 3, 3), ("translation", 1, 3)]  # then e.g. 640 480
POSE = [("rotation", 3, 3), ("head centre", 1, 3)]


def _blocks(f, layout, more=False, ended=False):
    """The blank-line-separated blocks of f as arrays of the shapes in `layout` ((name, rows, cols) each), finite
    numbers only; more: blocks after them are allowed (and not read)."""
    bs = [[]]
    for i, s in _lines(f, ended):
        if s.strip():
            bs[-1].append((i, s))
        elif bs[-1]:
            bs.append([])
    bs = [b for b in bs if b]
    if len(bs) > len(layout) and not more:
        raise ValueError(f"{f}:{bs[len(layout)][0][0]}: unexpected lines after the {layout[-1][0]} block")
    out = []
    for k, (name, n, m) in enumerate(layout):
        if k >= len(bs):
            raise ValueError(f"{f}: the file ends before the {name} block ({n} row(s) of {m} numbers)")
        b = bs[k]
        if len(b) != n:
            raise ValueError(
                f"{f}:{b[0][0]}: the {name} block (lines {b[0][0]}-{b[-1][0]}) has {len(b)} row(s), expected {n} "
                f"row(s) of {m} numbers, then a blank line"
            )
        out.append(np.array([_numbers(f, i, s, m, name) for i, s in b]))
    return out


def _numbers(f, i, s, m, name):
    try:
        v = [float(x) for x in s.split()]
    except ValueError:
        v = []
    if len(v) != m:
        raise ValueError(f"{f}:{i}: expected {m} numbers, got {s.strip()!r} (a row of the {name} block)")
    if not np.isfinite(v).all():
        raise ValueError(f"{f}:{i}: the {name} block holds a NaN or infinity: {s.strip()!r}")
    return v


@lru_cache(maxsize=64)
def _cal(f, stamp):
    k = _blocks(f, CAL, more=True)[0]
    if k[2].tolist() != [0, 0, 1]:
        raise ValueError(f"{f}:3: the intrinsics' last row must be 0 0 1, got {k[2].tolist()}")
    return k


def read_cal(f):
    """The 3x3 intrinsic matrix at the top of rgb.cal: the lesson's np.genfromtxt(f, skip_footer=6) (T:L1360), but
    read by structure: intrinsics (3x3, last row 0 0 1), distortion (4), rotation (3x3), translation (3)."""
    f = Path(f)
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no such calibration file")
    st = f.stat()
    return _cal(str(f), (st.st_mtime_ns, st.st_size, st.st_ino)).copy()


def read_pose(f):
    "(R 3x3, t 3) of a pose file: 3 rotation rows, a blank line, then the head centre tx ty tz in mm, a line end."
    rot, t = _blocks(f, POSE, ended=True)
    return rot, t[0]


def get_ctr(f, cal=None):
    "Pixel (x, y) of the head centre of frame f: pinhole projection x = tx*f/tz + cx, y = ty*f/tz + cy (T:L1357)."
    f = Path(f)
    pose = img2pose(f)
    if not pose.exists():
        raise FileNotFoundError(f"{pose}: pose file of {f.name} not found")
    cal = read_cal(f.parent / "rgb.cal") if cal is None else np.asarray(cal)
    tx, ty, tz = read_pose(pose)[1]
    if tz <= 0:
        raise ValueError(f"{pose}: head depth tz must be > 0, got {tz}")
    return torch.tensor([tx * cal[0][0] / tz + cal[0][2], ty * cal[1][1] / tz + cal[1][2]])


# ---------------------------------------------------------------- MovieLens 100k
def _file(path, name):
    "The file `path`, or `name` in the folder `path`."
    f = Path(path)
    f = f / name if f.is_dir() else f
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no such file")
    return f


def _int(x):
    return x.strip().isascii() and x.strip().isdigit()


def read_ratings(path):
    "u.data: tab-separated user, movie, rating (1..5), timestamp; no header (T:L1718). `path`: folder or file."
    f = _file(path, "u.data")
    rows = []
    for i, s in _lines(f, ended=True):  # a cut last line would be a smaller timestamp
        p = s.split("\t")
        if len(p) != 4:
            raise ValueError(f"{f}:{i}: expected 4 tab-separated fields, got {len(p)}: {s.strip()!r}")
        if not all(map(_int, p)):
            raise ValueError(f"{f}:{i}: expected integers, got {p}")
        v = [int(x) for x in p]
        if not 1 <= v[2] <= 5:
            raise ValueError(f"{f}:{i}: rating must be in 1..5, got {v[2]}")
        rows.append(v)
    if not rows:
        raise ValueError(f"{f}: no ratings")
    return pd.DataFrame(rows, columns=["user", "movie", "rating", "timestamp"])


MOJIBAKE = re.compile("[\xc2-\xf4][\x80-\xbf]")  # UTF-8 bytes read as latin-1: 'Ã©' for 'é'


def read_movies(path, n_fields=24):
    """u.item: pipe-separated, 24 fields, latin-1 (UTF-8 read too); keeps movie id and title, like usecols=(0, 1)
    (T:L1830). Movie ids are unique (the merge would repeat a twice-listed movie's ratings); titles need not be."""
    f = _file(path, "u.item")
    ids, titles, seen = [], [], {}
    for i, s in _lines(f):
        p = s.split("|")
        if len(p) != n_fields:
            raise ValueError(f"{f}:{i}: expected {n_fields} '|'-separated fields, got {len(p)}")
        if not _int(p[0]):
            raise ValueError(f"{f}:{i}: movie id must be an integer, got {p[0]!r}")
        if (j := seen.setdefault(int(p[0]), i)) != i:
            raise ValueError(f"{f}:{i}: movie id {int(p[0])} is already on line {j}")
        if m := MOJIBAKE.search(p[1]):
            warnings.warn(f"{f}:{i}: title {p[1]!r} holds {m[0]!r}: UTF-8 read as latin-1?", stacklevel=2)
        ids.append(int(p[0]))
        titles.append(p[1])
    if not ids:
        raise ValueError(f"{f}: no movies")
    return pd.DataFrame({"movie": ids, "title": titles})


def read_movielens(path):
    "ratings.merge(movies): joins on the shared column `movie` (T:L1836); a movie id missing from u.item is an error."
    d = dataset_dir(path, "u.data and u.item")
    r, m = read_ratings(d), read_movies(d)
    if missing := sorted(set(r.movie) - set(m.movie)):
        raise ValueError(f"{d / 'u.data'}: movie id(s) {missing[:5]} not in {d / 'u.item'}")
    return r.merge(m)


def top_crosstab(ratings, n_users=15, n_items=15, item="movie"):
    "Ratings of the most active users (rows) for the most rated items (columns); NaN where unrated (T:L1728)."
    u = ratings.user.value_counts().index[:n_users]
    i = ratings[item].value_counts().index[:n_items]
    sub = ratings[ratings.user.isin(u) & ratings[item].isin(i)]
    return pd.crosstab(sub.user, sub[item], values=sub.rating, aggfunc="mean").reindex(index=u, columns=i)
