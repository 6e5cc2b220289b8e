"""The seed's way of converting a folder of pattern images, the baseline of ``kikuchi convert``.

As the xcdskd notebook "HDF5: Convert Directory of Images" did: open each
``row_col.tiff`` with PIL and write it into a gzip-9 dataset with chunks of
one pattern, one pattern at a time. It imports neither kikuchi nor anything
heavy, so a benchmark can time it in a fresh process as a user would run it.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np


def seed_convert_loop(folder: Path, nav_shape: tuple[int, int], n_images: int, out: Path) -> tuple[float, float]:
    """Convert the first ``n_images`` images of ``folder``; return (wall, CPU) seconds of the loop.

    The dataset is made for the whole map (``rows * cols`` patterns) in the
    images' own dtype, as the notebook did; only the first ``n_images`` are
    written, so a long baseline can be timed on a part and scaled.
    """
    from PIL import Image

    rows, cols = nav_shape
    first = np.array(Image.open(folder / "0_0.tiff"))
    t0, c0 = time.perf_counter(), time.process_time()
    with h5py.File(out, "w") as f5:
        dset = f5.create_dataset(
            "Scan/EBSD/Data/RawPatterns", (rows * cols, *first.shape), dtype=first.dtype,
            chunks=(1, *first.shape), compression="gzip", compression_opts=9,
        )
        i = 0
        for r in range(rows):
            for c in range(cols):
                if i >= n_images:
                    break
                img = Image.open(folder / f"{r}_{c}.tiff")
                dset[i] = np.array(img)
                i += 1
    return time.perf_counter() - t0, time.process_time() - c0
