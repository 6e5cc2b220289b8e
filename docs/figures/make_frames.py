"""Draw docs/figures/frames.png: the sample, detector and beam of kikuchi's conventions.

The axes are computed with kikuchi.geometry (the same code the projection
uses), so the figure cannot drift from the code. Run:

    .venv/bin/python docs/figures/make_frames.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from kikuchi.geometry import Detector  # noqa: E402

OUT = Path(__file__).with_name("frames.png")


def main() -> None:
    det = Detector((60, 80), (0.45, 0.3, 0.6), sample_tilt_deg=70.0)
    r = det.rotation  # rows: x_d, y_d, z_d in the sample frame
    # drawing frame: X = x_d (side), Y = z_d (towards the screen), Z = y_d (up)
    to_lab = np.stack([r[0], r[2], r[1]])

    def lab(v):
        return to_lab @ np.asarray(v, dtype=float)

    fig = plt.figure(figsize=(10, 4.6), dpi=90)
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    # sample surface: spanned by x_s and y_s
    s = 0.45
    corners = [lab(a * np.array([1, 0, 0]) * s + b * np.array([0, 1, 0]) * s) for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
    c = np.array(corners)
    ax.plot(c[:, 0], c[:, 1], c[:, 2], color="0.4")
    ax.add_collection3d(_poly(c[:-1], "0.85"))
    for vec, name, col in ((np.eye(3)[0], "$x_s$ (RD)", "tab:red"), (np.eye(3)[1], "$y_s$ (TD)", "tab:green"), (np.eye(3)[2], "$z_s$ (ND)", "tab:blue")):
        v = lab(vec) * 0.55
        ax.quiver(0, 0, 0, *v, color=col, arrow_length_ratio=0.15, linewidth=2)
        ax.text(*(v * 1.18), name, color=col, fontsize=9)
    # beam
    ax.quiver(0, 0, 1.3, 0, 0, -1.25, color="k", arrow_length_ratio=0.08)
    ax.text(0.05, 0, 1.3, "beam", fontsize=9)
    # screen: plane y = L with the PC at (0, L, 0)
    L = 1.6
    h, w = det.shape
    x_b, y_b, z_b = det.pc
    scale = L / (z_b * h)  # drawing units per pixel
    left, right = -x_b * w * scale, (1 - x_b) * w * scale
    top, bottom = y_b * h * scale, -(1 - y_b) * h * scale
    scr = np.array([[left, L, top], [right, L, top], [right, L, bottom], [left, L, bottom], [left, L, top]])
    ax.plot(scr[:, 0], scr[:, 1], scr[:, 2], color="k")
    ax.add_collection3d(_poly(scr[:-1], "lightyellow"))
    ax.plot([0, 0], [0, L], [0, 0], "k:", linewidth=1)
    ax.scatter([0], [L], [0], color="k", marker="*", s=60)
    ax.text(0.05, L, 0.05, "PC", fontsize=9)
    for v, name, col in (((0.4, 0, 0), "$x_d$", "tab:red"), ((0, 0, 0.4), "$y_d$", "tab:green"), ((0, 0.4, 0), "$z_d$", "tab:blue")):
        ax.quiver(0, L, 0, *v, color=col, arrow_length_ratio=0.2, linestyle="--")
        ax.text(v[0] * 1.2, L + v[1] * 1.2, v[2] * 1.2, name, color=col, fontsize=9)
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-0.6, 1.8)
    ax.set_zlim(-1.2, 1.3)
    ax.set_box_aspect((3.2, 2.4, 2.5))
    ax.view_init(elev=12, azim=-8)
    ax.set_axis_off()
    ax.set_title("sample tilted 70$^\\circ$ towards the screen", fontsize=10)

    # the screen seen from behind, towards the sample, with the PC conventions
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.add_patch(plt.Rectangle((0, 0), w, h, facecolor="lightyellow", edgecolor="k"))
    pcx, pcy = x_b * w, y_b * h  # pixels from the top-left corner
    ax2.plot(pcx, pcy, "k*", markersize=12)
    ax2.annotate("", xy=(pcx, 2), xytext=(0, 2), arrowprops=dict(arrowstyle="<->", color="tab:purple"))
    ax2.text(pcx / 2, 4.5, "Bruker PCx $\\cdot$ w", color="tab:purple", ha="center", fontsize=8)
    ax2.annotate("", xy=(3, pcy), xytext=(3, 0), arrowprops=dict(arrowstyle="<->", color="tab:purple"))
    ax2.text(4, pcy / 2, "Bruker PCy $\\cdot$ h", color="tab:purple", fontsize=8, va="center")
    ax2.annotate("", xy=(pcx + 8, pcy), xytext=(pcx + 8, h), arrowprops=dict(arrowstyle="<->", color="tab:orange"))
    ax2.text(pcx + 9, (pcy + h) / 2, "EDAX y*$\\cdot$h, Oxford y*$\\cdot$w", color="tab:orange", fontsize=8, va="center")
    ax2.plot([pcx, w / 2], [pcy, h / 2], color="tab:cyan")
    ax2.plot(w / 2, h / 2, "+", color="tab:cyan")
    ax2.text(w / 2 + 1, h / 2 + 4, "EMsoft (xpc, ypc) from the centre\n(xpc > 0: PC left, ypc > 0: PC up)", color="tab:cyan", fontsize=8)
    ax2.annotate("", xy=(pcx + 12, pcy), xytext=(pcx, pcy), arrowprops=dict(arrowstyle="->", color="tab:red"))
    ax2.annotate("", xy=(pcx, pcy - 12), xytext=(pcx, pcy), arrowprops=dict(arrowstyle="->", color="tab:green"))
    ax2.text(pcx + 12, pcy - 1, "$x_d$", color="tab:red")
    ax2.text(pcx + 1, pcy - 12, "$y_d$", color="tab:green")
    ax2.text(0.5, -1.5, "pixel (0, 0)", fontsize=8)
    ax2.set_xlim(-2, w + 2)
    ax2.set_ylim(h + 3, -5)
    ax2.set_aspect("equal")
    ax2.set_xlabel("column")
    ax2.set_ylabel("row")
    ax2.set_title(f"pattern {h} x {w}, seen from behind the screen", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


def _poly(points, colour):
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    return Poly3DCollection([points], facecolor=colour, alpha=0.6, edgecolor="none")


if __name__ == "__main__":
    main()
