#!/usr/bin/python3
# generate.py: writes the small .npy fixtures that tests/test_files.c and
# tests/lua/test_io.lua read, with real NumPy (Debian's python3-numpy, 1.24).
# The test suite never runs Python; rerun this only to regenerate the committed files:
#   /usr/bin/python3 tests/data/npy/generate.py
# The values are spelled out again in the tests, so keep both in step.
import os

import numpy as np
import numpy.lib.format as fmt

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, array):
    np.save(os.path.join(HERE, name), array, allow_pickle=False)


def save_version(name, array, version):
    with open(os.path.join(HERE, name), "wb") as f:
        fmt.write_array(f, array, version=version, allow_pickle=False)


save("f4_2x3.npy", np.array([[-1.5, 0.0, 0.25], [2.0, 1024.5, -7.0]], dtype="<f4"))
save("f2_5.npy", np.array([0.0, 1.0, -2.0, 0.5, 65504.0], dtype="<f2"))
save("i8_3x2.npy", np.array([[-1, 2**40], [0, 2**62], [-2**63, 7]], dtype="<i8"))
save("i4_4.npy", np.array([-2**31, -1, 0, 2**31 - 1], dtype="<i4"))
save("u1_2x2x2.npy", (np.arange(8, dtype=np.uint8) * 30).reshape(2, 2, 2))
save("f4_scalar.npy", np.array(3.25, dtype="<f4"))
save("i8_0x3.npy", np.zeros((0, 3), dtype="<i8"))
save_version("f4_v2.npy", np.arange(4, dtype="<f4"), (2, 0))
save_version("f4_v3.npy", np.arange(4, dtype="<f4"), (3, 0))
