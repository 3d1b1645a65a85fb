#!/usr/bin/python3
# generate.py: writes the .npz fixtures that tests/test_npz.c reads, with real NumPy
# (Debian's python3-numpy, 1.24): one archive as np.savez writes it (stored members) and
# one as np.savez_compressed does (deflated). The test suite never runs Python; rerun
# this only to regenerate the committed files:
#   /usr/bin/python3 tests/data/npz/generate.py
# The values are spelled out again in test_npz.c, so keep both in step.
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

ARRAYS = {
    "weights": np.array([[-1.5, 0.0, 0.25], [2.0, 1024.5, -7.0]], dtype="<f4"),
    "labels": np.array([3, 0, 2**40], dtype="<i8"),
    "mask": (np.arange(6, dtype=np.uint8) * 40).reshape(3, 2),
    "half": np.array([0.5, -2.0], dtype="<f2"),
}

np.savez(os.path.join(HERE, "savez.npz"), **ARRAYS)
np.savez_compressed(os.path.join(HERE, "savez_compressed.npz"), **ARRAYS)
