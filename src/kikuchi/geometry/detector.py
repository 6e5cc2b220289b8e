"""The EBSD detector: screen shape, pattern centre(s), tilts and the gnomonic projection.

Frames (see docs/conventions.md for the figure):

* **sample frame** (x_s, y_s, z_s): EDAX/TSL's RD, TD, ND as in orix and
  kikuchipy; z_s is the outward surface normal. Euler angles refer to it.
* **detector frame** (x_d, y_d, z_d): origin at the pattern centre (PC) on
  the screen, x_d to the right along the pattern rows, y_d upwards (towards
  row 0), z_d the screen normal pointing from the sample to the screen. The
  pattern is seen from behind the screen towards the sample, pixel (0, 0)
  in its top-left corner.
* The source point lies at (0, 0, -DD) in detector units of pixels; the
  direction to the centre of pixel (row, col) is
  ``(col + 0.5 - PCx w, PCy h - row - 0.5, DD h)`` (Bruker PC, h x w pixels).

The detector axes in the sample frame follow from the sample tilt sigma about
x_d and the camera (detector) tilt theta: starting from x_d = y_s, y_d = z_s,
z_d = x_s, all three turn about x_d by (theta - sigma); then optional
azimuthal (about y_d, by -omega) and twist (about z_d, by -gamma) rotations,
as in EMsoft/kikuchipy. For sigma = 70, theta = 0:
x_d = (0, 1, 0), y_d = (-sin 70, 0, cos 70), z_d = (cos 70, 0, sin 70).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kikuchi._args import check_number, check_pair
from kikuchi.geometry.pattern_centre import PatternCentreError, convert_pc, normalize_convention

__all__ = ["Detector", "line_segment_in_pattern", "sample_to_detector_matrix"]

_logger = logging.getLogger(__name__)


def _rotate_about(v: np.ndarray, u: np.ndarray, angle: float) -> np.ndarray:
    u = u / np.linalg.norm(u)
    c, s = np.cos(angle), np.sin(angle)
    return v * c + np.cross(u, v) * s + u * np.dot(u, v) * (1 - c)


def sample_to_detector_matrix(
    sample_tilt_deg: float = 70.0,
    camera_tilt_deg: float = 0.0,
    azimuthal_deg: float = 0.0,
    twist_deg: float = 0.0,
) -> np.ndarray:
    """Matrix ``R`` whose rows are the detector axes (x_d, y_d, z_d) in the sample frame.

    ``v_detector = R @ v_sample`` and ``v_sample = R.T @ v_detector``.

    Examples
    --------
    >>> sample_to_detector_matrix(70.0).round(4).tolist()
    [[0.0, 1.0, 0.0], [-0.9397, 0.0, 0.342], [0.342, 0.0, 0.9397]]
    """
    basis = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    steps = (
        (0, np.radians(camera_tilt_deg - sample_tilt_deg)),
        (1, -np.radians(azimuthal_deg)),
        (2, -np.radians(twist_deg)),
    )
    for axis, angle in steps:
        if angle == 0.0:
            continue
        u = basis[axis].copy()
        basis = np.stack([_rotate_about(b, u, angle) for b in basis])
    return basis


def line_segment_in_pattern(a: float, b: float, c: float, shape: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Where the line ``a col + b row + c = 0`` crosses the border of a pattern of ``shape`` (rows, cols).

    The pattern covers ``[-0.5, w - 0.5] x [-0.5, h - 0.5]`` in (col, row),
    pixel centres at integers. Returns the two crossings ``(col0, row0, col1,
    row1)``, or None when the line misses the pattern or only touches a corner.

    Examples
    --------
    >>> line_segment_in_pattern(1.0, 0.0, -2.0, (5, 5))  # the column col = 2
    (2.0, -0.5, 2.0, 4.5)
    """
    h, w = shape
    x_lo, x_hi, y_lo, y_hi = -0.5, w - 0.5, -0.5, h - 0.5
    points: list[tuple[float, float]] = []
    if abs(b) > 1e-12:
        for x in (x_lo, x_hi):
            y = -(a * x + c) / b
            if y_lo - 1e-9 <= y <= y_hi + 1e-9:
                points.append((x, y))
    if abs(a) > 1e-12:
        for y in (y_lo, y_hi):
            x = -(b * y + c) / a
            if x_lo - 1e-9 <= x <= x_hi + 1e-9:
                points.append((x, y))
    if len(points) < 2:
        return None
    pts = np.array(points)
    # the two points farthest apart (corners can be found twice)
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    if d[i, j] < 1e-9:
        return None
    return float(pts[i, 0]), float(pts[i, 1]), float(pts[j, 0]), float(pts[j, 1])


class Detector:
    """An EBSD detector: pattern shape, pattern centre(s) and tilts.

    Parameters
    ----------
    shape
        Pattern shape (rows, cols) in binned pixels.
    pc
        Pattern centre: (3,) for the whole map, (n, 3) per pattern, or
        (rows, cols, 3) per map point, in ``convention``. Stored in Bruker's
        convention (:attr:`pc`).
    convention
        'bruker' (default), 'edax'/'tsl', 'oxford', 'emsoft' (needs
        ``px_size_um``) or 'emsoft4'.
    sample_tilt_deg
        Sample tilt about the microscope's horizontal axis, degrees.
    camera_tilt_deg
        Detector (camera) tilt about x_d, degrees; positive moves features up.
    azimuthal_deg, twist_deg
        Detector rotations about y_d and z_d, degrees (usually 0).
    binning
        Binning factor relative to the full detector.
    px_size_um
        Unbinned detector pixel size in µm (for EMsoft's L), or None.

    Examples
    --------
    >>> det = Detector((60, 80), (0.4, 0.8, 0.6), convention="edax")
    >>> det.pc.round(6).tolist()
    [0.4, 0.2, 0.6]
    >>> d = det.pixel_directions()
    >>> d.shape
    (60, 80, 3)
    >>> row, col, ok = det.project(d[10, 20])
    >>> round(float(row), 6), round(float(col), 6), bool(ok)
    (10.0, 20.0, True)
    """

    def __init__(
        self,
        shape: tuple[int, int],
        pc: Any = (0.5, 0.5, 0.5),
        *,
        convention: str = "bruker",
        sample_tilt_deg: float = 70.0,
        camera_tilt_deg: float = 0.0,
        azimuthal_deg: float = 0.0,
        twist_deg: float = 0.0,
        binning: int = 1,
        px_size_um: float | None = None,
    ):
        try:
            h, w = (int(s) for s in shape)
        except (TypeError, ValueError):
            raise ValueError(f"detector shape must be (rows, cols), got {shape!r}") from None
        if h < 1 or w < 1:
            raise ValueError(f"detector shape must be positive, got {(h, w)}")
        self.shape = (h, w)
        if isinstance(binning, bool) or not isinstance(binning, (int, np.integer)) or binning < 1:
            raise ValueError(f"binning must be a positive integer, got {binning!r}")
        self.binning = int(binning)
        self.px_size_um = None if px_size_um is None else check_number(px_size_um, "px_size_um", positive=True, unit="µm")
        self.sample_tilt_deg = check_number(sample_tilt_deg, "sample_tilt_deg", unit="degrees")
        self.camera_tilt_deg = check_number(camera_tilt_deg, "camera_tilt_deg", unit="degrees")
        self.azimuthal_deg = check_number(azimuthal_deg, "azimuthal_deg", unit="degrees")
        self.twist_deg = check_number(twist_deg, "twist_deg", unit="degrees")
        try:
            pc_arr = np.asarray(pc, dtype=np.float64)
        except (TypeError, ValueError):
            raise PatternCentreError(f"pattern centre {pc!r}: expected numbers (x, y, z)") from None
        if pc_arr.ndim == 0 or pc_arr.shape[-1] != 3 or pc_arr.ndim > 3:
            raise PatternCentreError(f"pattern centre must have shape (3,), (n, 3) or (rows, cols, 3), got {pc_arr.shape}")
        self.pc = convert_pc(pc_arr, convention, "bruker", shape=self.shape, binning=self.binning, px_size_um=self.px_size_um)
        if not np.all(np.isfinite(self.pc)):
            bad = np.argwhere(~np.all(np.isfinite(self.pc), axis=-1))
            where = f" at index {tuple(int(i) for i in bad[0])}" if bad.size else ""
            raise PatternCentreError(f"pattern centre is not finite{where}; fill or calibrate it first")
        if np.any(self.pc[..., 2] <= 0):
            raise PatternCentreError(f"detector distance (PC z) must be positive, got minimum {self.pc[..., 2].min():g}")
        self.rotation = sample_to_detector_matrix(self.sample_tilt_deg, self.camera_tilt_deg, self.azimuthal_deg, self.twist_deg)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_map(cls, ebsd_map: Any) -> Detector:
        """The detector of a pattern map (:class:`kikuchi.io.source.EBSDMap`), with per-point PCs.

        A map without a pattern centre gets (0.5, 0.5, 0.5) (Bruker) with a
        warning; a PC of convention 'unknown' is read as Bruker with a warning.
        """
        shape = tuple(ebsd_map.pattern_shape)
        pcd = ebsd_map.pattern_centre
        px = getattr(ebsd_map, "pixel_size_um", None)
        if pcd is None:
            _logger.warning("%s: no pattern centre in the file; assuming (0.5, 0.5, 0.5) (Bruker)", getattr(ebsd_map, "path", "map"))
            pc: Any = (0.5, 0.5, 0.5)
            convention = "bruker"
        else:
            pc = np.stack([pcd.pcx, pcd.pcy, pcd.dd], axis=-1)
            convention = pcd.convention
            if str(convention).lower() == "unknown":
                _logger.warning("%s: pattern centre convention unknown; reading it as Bruker", getattr(ebsd_map, "path", "map"))
                convention = "bruker"
            index_map = getattr(ebsd_map, "index_map", None)
            if index_map is not None and np.any(index_map < 0):
                # points without patterns: give them the mean PC so the geometry stays valid
                missing = ~np.all(np.isfinite(pc), axis=-1)
                if missing.any():
                    pc = pc.copy()
                    pc[missing] = np.nanmean(pc[~missing], axis=0)
            if np.allclose(pc, pc.reshape(-1, 3)[0]):
                pc = pc.reshape(-1, 3)[0]
        return cls(
            shape,
            pc,
            convention=convention,
            sample_tilt_deg=ebsd_map.sample_tilt_deg,
            camera_tilt_deg=ebsd_map.camera_tilt_deg,
            binning=ebsd_map.binning,
            px_size_um=px,
        )

    # -- pattern centres -------------------------------------------------------
    @property
    def n_pc(self) -> int:
        """Number of pattern centres (1 for one PC for the whole map)."""
        return int(np.prod(self.pc.shape[:-1])) if self.pc.ndim > 1 else 1

    @property
    def pc_flat(self) -> np.ndarray:
        """(n_pc, 3) Bruker pattern centres."""
        return self.pc.reshape(-1, 3)

    @property
    def pc_mean(self) -> np.ndarray:
        """(3,) mean Bruker pattern centre."""
        return self.pc_flat.mean(axis=0)

    def pc_as(self, convention: str) -> np.ndarray:
        """The pattern centre(s) in another convention (same shape as :attr:`pc`)."""
        return convert_pc(self.pc, "bruker", convention, shape=self.shape, binning=self.binning, px_size_um=self.px_size_um)

    def _pc_at(self, index: Any) -> np.ndarray:
        if index is None:
            if self.n_pc != 1:
                raise ValueError(
                    f"this detector has {self.n_pc} pattern centres (one per map point): pass index= "
                    "(a flat index into pc_flat, row * cols + col for a map, or a (row, col) map position)"
                )
            return self.pc_flat[0]
        if self.pc.ndim == 1:
            return self.pc
        if isinstance(index, tuple):
            if self.pc.ndim != 3:
                raise IndexError(f"a (row, col) index needs per-point pattern centres of shape (rows, cols, 3), have {self.pc.shape}")
            r, c = index
            if not (0 <= r < self.pc.shape[0] and 0 <= c < self.pc.shape[1]):
                raise IndexError(f"map position (row {r}, col {c}) is outside the {self.pc.shape[0]} x {self.pc.shape[1]} pattern centre map")
            return self.pc[r, c]
        i = int(index)
        if not 0 <= i < self.n_pc:
            raise IndexError(f"pattern centre index {i} is outside 0..{self.n_pc - 1}")
        return self.pc_flat[i]

    def select(self, index: Any) -> Detector:
        """A single-PC detector for one pattern (flat index into :attr:`pc_flat` or (row, col))."""
        return self.with_pc(self._pc_at(index))

    def with_pc(self, pc: Any, *, convention: str = "bruker") -> Detector:
        """A copy of this detector with other pattern centre(s)."""
        return Detector(
            self.shape,
            pc,
            convention=convention,
            sample_tilt_deg=self.sample_tilt_deg,
            camera_tilt_deg=self.camera_tilt_deg,
            azimuthal_deg=self.azimuthal_deg,
            twist_deg=self.twist_deg,
            binning=self.binning,
            px_size_um=self.px_size_um,
        )

    def extrapolate_pc(self, nav_shape: tuple[int, int], step_um: Any, *, reference: Any = None) -> Detector:
        """Per-point pattern centres of a map from one PC, the geometry and the beam position.

        Moving the beam moves the source point on the tilted surface, and
        with it the PC (Singh et al. 2017, appendix A; kikuchipy's
        ``EBSDDetector.extrapolate_pc``): a step along the map's columns
        moves the source along −x_d (PCx falls), a step down the map's rows
        moves it up the slope, away from the screen (PCy falls, DD grows).
        The displacement ``d`` (µm, map rows along −x_s, columns along −y_s
        in the sample frame) is turned into the detector frame with this
        detector's rotation (sample and camera tilt, azimuthal, twist):
        ``ΔPCx = d_x / (w δ b)``, ``ΔPCy = −d_y / (h δ b)``,
        ``ΔDD = −d_z / (h δ b)``, with δ the unbinned pixel size and b the
        binning. For σ = 70°, θ = 0 that is Singh's ΔPCy = −Δrow Δy cos α /
        (h δ b), ΔDD = +Δrow Δy sin α / (h δ b), α = 90° − σ + θ.

        Parameters
        ----------
        nav_shape
            Map (rows, cols).
        step_um
            Map step in µm: one number, or (row step, column step).
        reference
            Map position (row, col) (may be fractional) where this
            detector's PC (its mean PC, when it has several) holds; default
            the centre of the map.

        Returns
        -------
        Detector
            The same detector with a (rows, cols, 3) Bruker PC map.

        Examples
        --------
        >>> det = Detector((60, 60), (0.5, 0.3, 0.6), binning=8, px_size_um=25.0)  # a 12 mm screen
        >>> pc = det.extrapolate_pc((3, 3), 60.0).pc  # 60 µm steps: 1/200 of the screen
        >>> (pc[1, 2] - pc[1, 1]).round(6).tolist()  # one column right: PCx falls by 0.005
        [-0.005, 0.0, 0.0]
        >>> (pc[2, 1] - pc[1, 1]).round(6).tolist()  # one row down: up the slope, further away
        [0.0, -0.004698, 0.00171]
        """
        nr, nc = check_pair(nav_shape, "nav_shape")
        step = np.broadcast_to(np.asarray(step_um, dtype=np.float64).reshape(-1), (2,))
        if not np.all(np.isfinite(step)) or np.any(step <= 0):
            raise ValueError(f"step_um must be one or two positive numbers (µm), got {step_um!r}")
        if self.px_size_um is None:
            raise ValueError(
                "extrapolating PCs over the map needs the detector's unbinned pixel size (px_size_um, the camera's µm per "
                "pixel: e.g. --px-size); this detector has none"
            )
        ref = np.array([(nr - 1) / 2.0, (nc - 1) / 2.0]) if reference is None else np.asarray(reference, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(ref)):
            raise ValueError(f"reference must be a finite (row, col), got {reference!r}")
        rows, cols = np.mgrid[0:nr, 0:nc].astype(np.float64)
        drow = (rows - ref[0]) * step[0]
        dcol = (cols - ref[1]) * step[1]
        d_sample = np.stack([-drow, -dcol, np.zeros_like(drow)], axis=-1)  # rows along −x_s, columns along −y_s
        d = d_sample @ self.rotation.T  # v_d = R v_s
        h, w = self.shape
        px = self.px_size_um * self.binning
        pc = np.empty((nr, nc, 3))
        pc[..., 0] = d[..., 0] / (w * px)
        pc[..., 1] = -d[..., 1] / (h * px)
        pc[..., 2] = -d[..., 2] / (h * px)
        return self.with_pc(self.pc_mean + pc)

    def __repr__(self) -> str:
        pc = ", ".join(f"{v:.4f}" for v in self.pc_mean)
        many = f" ({self.n_pc} PCs, mean)" if self.n_pc > 1 else ""
        return (
            f"<Detector {self.shape[0]} x {self.shape[1]}, PC bruker ({pc}){many}, sample tilt {self.sample_tilt_deg:g} deg, "
            f"camera tilt {self.camera_tilt_deg:g} deg, binning {self.binning}>"
        )

    # -- gnomonic projection -----------------------------------------------------
    def pixel_matrices(self, *, frame: str = "detector") -> np.ndarray:
        """(n_pc, 3, 3) matrices ``H`` with ``v = H @ (col, row, 1)`` for every pattern centre (flat order).

        ``v`` is the vector from the source point to the centre of pixel
        (row, col), in pixels: ``(col + 0.5 - PCx w, PCy h - row - 0.5, DD h)``
        in the detector frame (``frame='detector'``), or ``R.T`` of that in the
        sample frame (``frame='sample'``). The gnomonic projection is linear in
        homogeneous pixel coordinates; this is where its formula lives.

        Examples
        --------
        >>> Detector((60, 80), (0.4, 0.2, 0.6)).pixel_matrices()[0].tolist()
        [[1.0, 0.0, -31.5], [0.0, -1.0, 11.5], [0.0, 0.0, 36.0]]
        """
        return self._pixel_matrices(self.pc_flat, frame)

    def pixel_matrix(self, index: Any = None, *, frame: str = "detector") -> np.ndarray:
        """(3, 3) matrix ``H`` with ``v = H @ (col, row, 1)`` for one pattern centre (see :meth:`pixel_matrices`)."""
        return self._pixel_matrices(self._pc_at(index)[None], frame)[0]

    def _pixel_matrices(self, pcs: np.ndarray, frame: str) -> np.ndarray:
        if frame not in ("detector", "sample"):
            raise ValueError(f"frame must be 'detector' or 'sample', got {frame!r}")
        h, w = self.shape
        m = np.zeros((len(pcs), 3, 3))
        m[:, 0, 0] = 1.0
        m[:, 1, 1] = -1.0
        m[:, 0, 2] = 0.5 - pcs[:, 0] * w
        m[:, 1, 2] = pcs[:, 1] * h - 0.5
        m[:, 2, 2] = pcs[:, 2] * h
        return self.rotation.T @ m if frame == "sample" else m

    def detector_vectors(self, index: Any = None) -> np.ndarray:
        """(h, w, 3) vectors from the source point to each pixel centre in the detector frame, in pixels."""
        m = self.pixel_matrix(index)
        h, w = self.shape
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
        return np.stack([cols, rows, np.ones_like(rows)], axis=-1) @ m.T

    def pixel_directions(self, index: Any = None) -> np.ndarray:
        """Unit vectors (h, w, 3) from the source point to each pixel centre, in the SAMPLE frame.

        Parameters
        ----------
        index
            Which pattern centre: None for a single-PC detector, a storage
            index, or a (row, col) map position.
        """
        v = self.detector_vectors(index) @ self.rotation  # rows of R are detector axes: v_s = R.T v_d
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        return v

    def crystal_directions(self, euler_rad: Any, index: Any = None) -> np.ndarray:
        """Unit vectors (h, w, 3) to each pixel centre in the CRYSTAL frame of orientation ``euler_rad`` (3,)."""
        from kikuchi.geometry.orientation import sample_to_crystal

        return sample_to_crystal(self.pixel_directions(index), np.asarray(euler_rad, dtype=np.float64).reshape(3))

    def project_crystal(self, vectors_crystal: Any, euler_rad: Any, index: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel (row, col, visible) of crystal-frame directions for orientation ``euler_rad`` (see :meth:`project`)."""
        from kikuchi.geometry.orientation import crystal_to_sample

        return self.project(crystal_to_sample(vectors_crystal, np.asarray(euler_rad, dtype=np.float64).reshape(3)), index=index)

    def gnomonic(self, vectors_sample: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gnomonic coordinates (x, y) in units of the detector distance, and whether in front of the screen."""
        v = np.asarray(vectors_sample, dtype=np.float64)
        if v.ndim == 0 or v.shape[-1] != 3:
            raise ValueError(f"vectors must have a last axis of length 3, got shape {v.shape}")
        d = v @ self.rotation.T
        front = d[..., 2] > 1e-12
        z = np.where(front, d[..., 2], np.nan)
        return d[..., 0] / z, d[..., 1] / z, front

    def project(self, vectors_sample: Any, index: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates where sample-frame directions hit the screen.

        Parameters
        ----------
        vectors_sample
            (..., 3) directions from the source point, sample frame.
        index
            Which pattern centre (see :meth:`pixel_directions`).

        Returns
        -------
        row, col
            (...) float pixel coordinates (pixel centres at integers); NaN
            for directions pointing away from the screen.
        visible
            (...) bool: in front of the screen and inside the pattern.
        """
        x_b, y_b, z_b = self._pc_at(index)
        h, w = self.shape
        gx, gy, front = self.gnomonic(vectors_sample)
        col = gx * z_b * h + x_b * w - 0.5
        row = y_b * h - gy * z_b * h - 0.5
        with np.errstate(invalid="ignore"):
            visible = front & (col >= -0.5) & (col <= w - 0.5) & (row >= -0.5) & (row <= h - 0.5)
        return row, col, visible
