#!/usr/bin/env python3
"""Copy scikit-learn's bundled digits data to crates/kiln-nn/data/digits.csv.gz, verify it against
sklearn.datasets.load_digits(), and (re)write crates/kiln-nn/data/README.md with the checksums.

Run:  /tmp/peers/bin/python scripts/prepare_digits.py
"""
import gzip
import hashlib
import os
import shutil

import numpy as np
import sklearn
import sklearn.datasets
from sklearn.datasets import load_digits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "crates", "kiln-nn", "data")
DST = os.path.join(DATA_DIR, "digits.csv.gz")
SRC = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "digits.csv.gz")

README = """# kiln-nn bundled data

## `digits.csv.gz`

Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak, 1998), UCI Machine Learning
Repository, <https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits>
Licensed under **CC BY 4.0**
(<https://creativecommons.org/licenses/by/4.0/>). This is the copy bundled with scikit-learn
{skv} (`sklearn/datasets/data/digits.csv.gz`, the test-set part of the UCI data, as returned by
`sklearn.datasets.load_digits()`), copied byte-for-byte.

Format (gzip-compressed text):

* {rows} lines, no header, each terminated by `\\n`; fields separated by `,` with no spaces.
* Each line: 64 pixel values (integers 0..16, an 8x8 image in row-major order), then the label
  (integer 0..9) — 65 fields.
* Row order is the same as `load_digits().data` / `.target` (row i here = sample i there).

Checksums (sha256):

* `digits.csv.gz` (compressed file): `{sha_gz}`
* decompressed CSV text: `{sha_csv}`

Verified by `scripts/prepare_digits.py`, which re-copies the file and checks that every value
equals `load_digits()` (data and target). Class counts: {counts}.
"""


def main():
    os.makedirs(DATA_DIR, exist_ok=True)
    shutil.copyfile(SRC, DST)
    raw_gz = open(DST, "rb").read()
    raw = gzip.decompress(raw_gz)
    lines = raw.decode("ascii").split("\n")
    assert lines[-1] == "", "file must end with a newline"
    rows = [list(map(int, ln.split(","))) for ln in lines[:-1]]
    arr = np.array(rows, dtype=np.int64)
    assert arr.shape == (1797, 65), arr.shape
    d = load_digits()
    assert np.array_equal(arr[:, :64].astype(np.float64), d.data), "pixel mismatch"
    assert np.array_equal(arr[:, 64], d.target), "label mismatch"
    assert arr[:, :64].min() >= 0 and arr[:, :64].max() <= 16
    counts = np.bincount(arr[:, 64], minlength=10)
    sha_gz = hashlib.sha256(raw_gz).hexdigest()
    sha_csv = hashlib.sha256(raw).hexdigest()
    with open(os.path.join(DATA_DIR, "README.md"), "w") as fh:
        fh.write(README.format(skv=sklearn.__version__, rows=arr.shape[0], sha_gz=sha_gz, sha_csv=sha_csv,
                               counts=", ".join(f"{i}: {c}" for i, c in enumerate(counts))))
    print(f"wrote {DST} ({len(raw_gz)} bytes, sha256 {sha_gz}); matches load_digits(): 1797 x 64 + label")


if __name__ == "__main__":
    main()
