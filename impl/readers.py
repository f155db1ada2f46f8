"""Readers for the lesson's four datasets, on real data and on the miniature fixtures alike.

Malformed input raises ValueError (FileNotFoundError for a missing file) whose message starts with the
file, and the line where there is one: `u.data:17: expected 4 tab-separated fields, got 3`.
"""

import mimetypes
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTS = {k for k, v in mimetypes.types_map.items() if v.startswith("image/")}
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


# ---------------------------------------------------------------- files and images
def get_image_files(path, recurse=True):
    "Image files under `path` (by extension's MIME type), in os.walk order like fastai; hidden folders skipped."
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    out = []
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
    "train.csv (fname,labels,is_valid) as a DataFrame; `path` is the folder or the csv. Checks every row."
    f = Path(path)
    f = f / "train.csv" if f.is_dir() else f
    if not f.exists():
        raise FileNotFoundError(f"{f}: no such csv file")
    try:
        df = pd.read_csv(f, dtype={"fname": str, "labels": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{f}: not a readable csv ({e})") from e
    want = ["fname", "labels", "is_valid"]
    if missing := [c for c in want if c not in df.columns]:
        raise ValueError(f"{f}: missing column(s) {missing}; expected {want}, found {list(df.columns)}")
    for i, r in enumerate(df.itertuples(index=False), 2):  # line 1 is the header
        if not r.fname:
            raise ValueError(f"{f}:{i}: empty fname")
        if not r.labels.strip():
            raise ValueError(f"{f}:{i}: no labels for {r.fname}")
        if classes is not None and (bad := [lb for lb in r.labels.split(" ") if lb not in classes]):
            raise ValueError(f"{f}:{i}: unknown label(s) {bad} for {r.fname}; expected some of {list(classes)}")
        if r.is_valid not in (True, False, "True", "False"):
            raise ValueError(f"{f}:{i}: is_valid must be True or False, got {r.is_valid!r}")
    df["is_valid"] = df.is_valid.map(lambda v: v in (True, "True")).astype(bool)
    return df


# ---------------------------------------------------------------- BIWI head pose
def img2pose(f):
    "frame_00003_rgb.jpg -> frame_00003_pose.txt: drop the last 7 letters ('rgb.jpg'), add 'pose.txt' (T:L1343)."
    if not str(f).endswith("rgb.jpg"):
        raise ValueError(f"{f}: not a BIWI frame (expected a name ending in rgb.jpg)")
    return Path(f"{str(f)[:-7]}pose.txt")


def _floats(f, lineno, line, n):
    try:
        v = [float(x) for x in line.split()]
    except ValueError:
        v = []
    if len(v) != n:
        raise ValueError(f"{f}:{lineno}: expected {n} numbers, got {line.strip()!r}")
    return v


def _rows(f):
    "(line number, text) of the non-blank lines of a text file."
    try:
        text = Path(f).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{f}: no such file") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{f}: not a text file ({e})") from e
    return [(i, s) for i, s in enumerate(text.splitlines(), 1) if s.strip()]


@lru_cache(maxsize=64)
def _cal(f, mtime):
    try:
        cal = np.genfromtxt(f, skip_footer=6)  # T:L1360; rows 0-1 are all get_ctr uses
    except (OSError, ValueError) as e:
        raise ValueError(f"{f}: not a calibration file ({e})") from e
    if cal.ndim != 2 or cal.shape[1] != 3 or len(cal) < 2 or not np.isfinite(cal).all():
        raise ValueError(f"{f}: expected 3x3 intrinsics (2 rows at least) above 6 footer rows, got shape {cal.shape}")
    return cal


def read_cal(f):
    "The intrinsic matrix at the top of rgb.cal: np.genfromtxt(f, skip_footer=6) (T:L1360), checked."
    f = Path(f)
    if not f.exists():
        raise FileNotFoundError(f"{f}: no such calibration file")
    return _cal(str(f), f.stat().st_mtime_ns).copy()


def read_pose(f):
    "(R 3x3, t 3) of a pose file: 3 rotation rows, a blank line, then the head centre tx ty tz in mm."
    rows = _rows(f)
    if len(rows) < 4:
        raise ValueError(f"{f}: expected 3 rotation rows and a translation, found {len(rows)} lines")
    rot = np.array([_floats(f, i, s, 3) for i, s in rows[:3]])
    return rot, np.array(_floats(f, *rows[3], 3))


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
    f = Path(path)
    f = f / name if f.is_dir() else f
    if not f.exists():
        raise FileNotFoundError(f"{f}: no such file")
    return f


def read_ratings(path):
    "u.data: tab-separated user, movie, rating (1..5), timestamp; no header (T:L1718). `path`: folder or file."
    f = _file(path, "u.data")
    rows = []
    with open(f, encoding="latin-1") as fh:
        for i, s in enumerate(fh, 1):
            p = s.rstrip("\r\n").split("\t")
            if len(p) != 4:
                raise ValueError(f"{f}:{i}: expected 4 tab-separated fields, got {len(p)}: {s.strip()!r}")
            if not all(x.strip().isdigit() for x in p):
                raise ValueError(f"{f}:{i}: expected integers, got {p}")
            v = [int(x) for x in p]
            if not 1 <= v[2] <= 5:
                raise ValueError(f"{f}:{i}: rating must be in 1..5, got {v[2]}")
            rows.append(v)
    if not rows:
        raise ValueError(f"{f}: no ratings")
    return pd.DataFrame(rows, columns=["user", "movie", "rating", "timestamp"])


def read_movies(path, n_fields=24):
    "u.item: pipe-separated, latin-1, 24 fields; keeps movie id and title, like usecols=(0, 1) (T:L1830)."
    f = _file(path, "u.item")
    ids, titles = [], []
    with open(f, encoding="latin-1") as fh:
        for i, s in enumerate(fh, 1):
            p = s.rstrip("\r\n").split("|")
            if len(p) != n_fields:
                raise ValueError(f"{f}:{i}: expected {n_fields} '|'-separated fields, got {len(p)}")
            if not p[0].isdigit():
                raise ValueError(f"{f}:{i}: movie id must be an integer, got {p[0]!r}")
            ids.append(int(p[0]))
            titles.append(p[1])
    if not ids:
        raise ValueError(f"{f}: no movies")
    return pd.DataFrame({"movie": ids, "title": titles})


def read_movielens(path):
    "ratings.merge(movies): joins on the shared column `movie` (T:L1836); a movie id missing from u.item is an error."
    r, m = read_ratings(path), read_movies(path)
    if missing := sorted(set(r.movie) - set(m.movie)):
        raise ValueError(f"{_file(path, 'u.data')}: movie id(s) {missing[:5]} not in {_file(path, 'u.item')}")
    return r.merge(m)


def top_crosstab(ratings, n_users=15, n_items=15, item="movie"):
    "Ratings of the most active users (rows) for the most rated items (columns); NaN where unrated (T:L1728)."
    u = ratings.user.value_counts().index[:n_users]
    i = ratings[item].value_counts().index[:n_items]
    sub = ratings[ratings.user.isin(u) & ratings[item].isin(i)]
    return pd.crosstab(sub.user, sub[item], values=sub.rating, aggfunc="mean").reindex(index=u, columns=i)
