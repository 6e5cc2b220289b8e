"""``kikuchi demo``: every stage of the pipeline on a built-in synthetic map.

The demo runs the same commands a user would type, in this process, and
prints each one, so its output doubles as a tutorial:

1. simulate a small map of Ni grains with known truth (orientations, PC);
2. export its patterns as a folder of AZtec-named 16-bit TIFFs and convert
   the folder back to a map file (the acquisition path of real data);
3. describe the map file (``info``) and draw map figures (``plot``);
4. process the patterns (static + dynamic background, binning);
5. virtual BSE imaging and quality maps (a gallery with ``index.html``);
6. Hough indexing to a CTF file, IPF map next to the truth.

Results go to ``./demo-output`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kikuchi.cli._options import rows_cols
from kikuchi.cli.main import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="demo-output", help="folder for the results (default: ./demo-output)")
    parser.add_argument("--shape", type=rows_cols, default=(20, 25), help="map shape ROWSxCOLS of the synthetic map (default 20x25)")
    parser.add_argument("--pattern-shape", type=rows_cols, default=(60, 60), help="pattern shape HxW (default 60x60)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the synthetic map")


def _kikuchi(*argv: str) -> None:
    """Run one ``kikuchi`` command in this process, printed as a user would type it."""
    from kikuchi.cli.main import main

    print(f"\n$ kikuchi {' '.join(argv)}", flush=True)
    code = main(list(argv))
    if code != 0:
        raise CommandError(f"demo stage 'kikuchi {argv[0]}' failed with exit code {code}")


def _export_aztec_folder(map_path: Path, folder: Path) -> int:
    """Write every pattern of a map file as ``row_col.tiff`` (16-bit), as AZtec exports them."""
    import tifffile

    import kikuchi
    from kikuchi.io._atomic import atomic_output

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with kikuchi.open(map_path) as m:
        rows, cols = m.nav_shape
        for row in range(rows):
            block = m.read_rows(row, row + 1)[0]
            for col in range(cols):
                with atomic_output(folder / f"{row}_{col}.tiff") as tmp:
                    tifffile.imwrite(tmp, block[col].astype(np.uint16))
        return rows * cols


def run(args: argparse.Namespace) -> int:
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: list[tuple[str, Path]] = []

    def stage(title: str, body: Callable[[], None]) -> None:
        print(f"\n=== {title}", flush=True)
        body()

    synthetic = out / "synthetic.h5"
    truth_ctf = out / "truth.ctf"
    images = out / "images"
    converted = out / "map.h5"
    processed = out / "processed.h5"
    vbse_dir = out / "vbse"
    quality_dir = out / "quality"
    indexed = out / "indexed.ctf"

    stage(
        "1. Simulate a synthetic Ni map with known truth",
        lambda: _kikuchi(
            "simulate", "-o", str(synthetic), "--phase", "ni", "--shape", "{}x{}".format(*args.shape),
            "--pattern-shape", "{}x{}".format(*args.pattern_shape), "--grains", "12", "--noise", "low",
            "--seed", str(args.seed), "--ctf", str(truth_ctf),
        ),
    )
    results += [("synthetic map (truth inside)", synthetic), ("truth as CTF", truth_ctf)]

    def convert() -> None:
        n = _export_aztec_folder(synthetic, images)
        print(f"(wrote {n} AZtec-named 16-bit TIFFs to {images})")
        _kikuchi("convert", str(images), "-o", str(converted), "--ctf", str(truth_ctf), "--background", "mean")
        import kikuchi

        with kikuchi.open(synthetic) as a, kikuchi.open(converted) as b:
            same = all(np.array_equal(a.read_rows(r, r + 1), b.read_rows(r, r + 1)) for r in range(a.nav_shape[0]))
            print(f"(converted map equals the simulated one at every (row, col): {same}; step {list(b.step_um)} µm)")

    stage("2. Convert a folder of pattern images to a map file", convert)
    results += [("pattern images (AZtec naming)", images), ("converted map file", converted)]

    stage("3. Describe the map file", lambda: _kikuchi("info", str(converted)))

    def figures() -> None:
        _kikuchi("plot", str(converted), "--map", "bse", "-o", str(out / "bse.png"))
        _kikuchi("plot", str(truth_ctf), "--map", "ipf-z", "-o", str(out / "truth_ipf_z.png"))
        _kikuchi("plot", str(truth_ctf), "--map", "phase", "-o", str(out / "truth_phase.png"))

    stage("4. Map figures", figures)
    results += [("BSE map", out / "bse.png"), ("truth IPF-Z map", out / "truth_ipf_z.png")]

    stage(
        "5. Process the patterns (static + dynamic background, contrast)",
        lambda: _kikuchi("process", str(converted), "-o", str(processed), "--preset", "indexing", "--binning", "1"),
    )
    results.append(("processed map file", processed))

    def imaging() -> None:
        _kikuchi("vbse", str(converted), "-o", str(vbse_dir), "--grid", "7x7")
        _kikuchi("quality", str(converted), "-o", str(quality_dir))

    stage("6. Virtual BSE imaging and quality maps", imaging)
    results += [("virtual BSE gallery", vbse_dir / "index.html"), ("quality maps", quality_dir)]

    def index() -> None:
        # The synthetic map carries its pattern centre and its truth, so the
        # figure shows the indexed IPF map next to the true one.
        _kikuchi("index", str(synthetic), "--phase", "ni", "-o", str(indexed), "--figure", str(out / "indexed_vs_truth.png"), "--no-progress")
        _kikuchi("plot", str(indexed), "--map", "ipf-z", "-o", str(out / "indexed_ipf_z.png"))

    stage("7. Hough indexing", index)
    results += [
        ("orientation map (CTF)", indexed),
        ("indexed IPF-Z next to the truth", out / "indexed_vs_truth.png"),
        ("indexed IPF-Z map", out / "indexed_ipf_z.png"),
    ]

    print(f"\nDemo finished in {time.perf_counter() - t0:.1f} s. Results in {out}:")
    for label, path in results:
        print(f"  {label:32s} {path}")
    print(f"\nExplore the map in the browser:  kikuchi explore {converted}")
    return 0
