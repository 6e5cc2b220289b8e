"""Read/write speed of CTF and ANG orientation maps against orix in the same run.

Run by hand: ``.venv/bin/python benchmarks/orientation_map_io.py [FILE.ctf]``
(default: ../shared/data/xcdskd/GaN_polytype_mixing.ctf, 33,712 points).
Prints seconds per call (best of 5) and the ratio orix / kikuchi.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(func, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from orix.io import load, save

    from kikuchi.io.orientation_map import read_orientation_map

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "xcdskd" / "GaN_polytype_mixing.ctf"
    warnings.simplefilter("ignore")
    omap = read_orientation_map(path)
    xmap = omap.to_orix()
    tmp = Path(tempfile.mkdtemp())
    rows = [
        ("read " + path.suffix, best(lambda: read_orientation_map(path)), best(lambda: load(str(path)))),
        ("write .ang", best(lambda: omap.write(tmp / "k.ang")), best(lambda: save(str(tmp / "o.ang"), xmap, overwrite=True))),
        ("read .ang (ours)", best(lambda: read_orientation_map(tmp / "k.ang")), best(lambda: load(str(tmp / "k.ang")))),
    ]
    print(f"{path.name}: {len(omap)} points")
    print(f"{'task':<18}{'kikuchi s':>11}{'orix s':>10}{'orix/kikuchi':>14}")
    for name, ours, theirs in rows:
        print(f"{name:<18}{ours:>11.3f}{theirs:>10.3f}{theirs / ours:>14.1f}")
    print(f"write .ctf        {best(lambda: omap.write(tmp / 'k.ctf')):>11.3f}    (orix writes no CTF)")


if __name__ == "__main__":
    main()
