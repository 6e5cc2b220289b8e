"""The index summary figure: IPF-Z map (next to the truth when known), MAD and band contrast maps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["index_summary_figure"]


def index_summary_figure(
    omap: Any,
    path: str | os.PathLike,
    *,
    truth: tuple[np.ndarray, np.ndarray] | None = None,
    phases: list[Any] | None = None,
    title: str = "",
) -> Path:
    """Write a PNG with the IPF-Z map of ``omap`` (and of ``truth``), its MAD map and band contrast map.

    Parameters
    ----------
    omap
        Square-grid :class:`~kikuchi.io.orientation_map.OrientationMap` from indexing.
    path
        Output PNG (written atomically).
    truth
        Optional (euler (rows, cols, 3) rad, phase_id (rows, cols)) of the
        map's truth or reference orientations.
    phases
        Crystal phases (default: the map's PhaseInfo list).
    title
        Figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from kikuchi.figures import ipf_key_image, ipf_rgb
    from kikuchi.io._atomic import atomic_output

    nr, nc = omap.nav_shape
    info = omap.phases
    rgb = ipf_rgb(omap.euler.reshape(nr, nc, 3), omap.phase_id.reshape(nr, nc), info)
    panels: list[tuple[str, np.ndarray, dict[str, Any]]] = [("IPF-Z (indexed)", rgb, {})]
    if truth is not None:
        te, tp = truth
        panels.append(("IPF-Z (truth / reference)", ipf_rgb(te.reshape(nr, nc, 3), tp.reshape(nr, nc), info), {}))
    mad = omap.columns["mad"].reshape(nr, nc).astype(float)
    mad = np.where(omap.phase_id.reshape(nr, nc) > 0, mad, np.nan)
    panels.append(("MAD (deg)", mad, {"cmap": "viridis"}))
    panels.append(("band contrast", omap.columns["bc"].reshape(nr, nc).astype(float), {"cmap": "gray"}))
    n = len(panels) + 1
    fig = Figure(figsize=(3.6 * n, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n)
    sy, sx = omap.step_um
    extent = (-0.5 * sx, (nc - 0.5) * sx, (nr - 0.5) * sy, -0.5 * sy)
    for ax, (label, image, kw) in zip(axes, panels):
        im = ax.imshow(image, extent=extent, interpolation="nearest", **kw)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("x (µm)")
        if image.ndim == 2:
            fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0].set_ylabel("y (µm)")
    if info:
        axes[-1].imshow(ipf_key_image(info[0], size=200))
        axes[-1].set_title(f"IPF-Z key ({info[0].name})", fontsize=10)
    axes[-1].set_axis_off()
    indexed = float((omap.phase_id > 0).mean()) if omap.phase_id.size else 0.0
    fig.suptitle(f"{title}  indexed {100 * indexed:.1f}%".strip(), fontsize=11)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
