"""Master patterns: Kikuchi intensity over all directions of the crystal frame.

A :class:`MasterPattern` holds the two hemispheres in EMsoft's square Lambert
projection (see :mod:`kikuchi.simulate.lambert`). It comes from our
kinematical simulation (:func:`kikuchi.simulate.kinematical.kinematical_master_pattern`)
or from an EMsoft ``EMEBSDmaster`` HDF5 file (dynamical simulation), and is
projected onto a detector with :func:`kikuchi.simulate.project_patterns`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.simulate import _kernels
from kikuchi.simulate.lambert import as_direction_array

__all__ = ["MasterPattern", "MasterPatternError"]

_logger = logging.getLogger(__name__)


class MasterPatternError(ValueError):
    """A master pattern file is not readable or not an EMsoft master pattern."""


@dataclass
class MasterPattern:
    """Kikuchi intensity on the sphere, stored in the square Lambert projection.

    Parameters
    ----------
    north, south
        (size, size) intensities of the northern (z >= 0) and southern
        hemispheres of the crystal frame, EMsoft's square Lambert grid:
        ``[row, col]`` is the direction at ``X = 2 col/(size-1) - 1``,
        ``Y = 2 row/(size-1) - 1``. Stored as float32.
    kv
        Accelerating voltage in kV the pattern was computed for.
    phase
        The crystal phase (a :class:`kikuchi.crystal.Phase`, or a dict with
        ``name``, ``space_group``, ``lattice`` as in map files), or None.
    source
        Where the pattern came from (file path, or a description).

    Examples
    --------
    >>> from kikuchi.simulate.lambert import lambert_grid_vectors
    >>> v = lambert_grid_vectors(101)
    >>> mp = MasterPattern(v[0, ..., 0], v[1, ..., 0], kv=20.0)  # intensity = x
    >>> [round(float(a), 3) for a in mp.sample(np.array([[0.6, 0.0, 0.8], [-1.0, 0.0, 0.0]]))]
    [0.6, -1.0]
    """

    north: np.ndarray
    south: np.ndarray
    kv: float
    phase: Any = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stack(self.north, self.south)
        self.kv = float(self.kv)

    def __getstate__(self) -> dict[str, Any]:  # pickled without the stack: views do not survive pickling
        return {k: v for k, v in self.__dict__.items() if k != "_stacked"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stack(self.north, self.south)

    def _stack(self, north: Any, south: Any) -> np.ndarray:
        """Both hemispheres in one (2, n, n) float32 array; ``north`` and ``south`` become its two views."""
        north, south = np.asarray(north), np.asarray(south)
        if north.ndim != 2 or north.shape[0] != north.shape[1] or north.shape[0] < 3:
            raise ValueError(f"master pattern hemispheres must be square arrays of side >= 3, got {north.shape}")
        if south.shape != north.shape:
            raise ValueError(f"northern {north.shape} and southern {south.shape} hemispheres differ in shape")
        both = np.empty((2, *north.shape), dtype=np.float32)
        both[0] = north
        both[1] = south
        self.north, self.south = both[0], both[1]
        self._stacked = (both, self.north, self.south)
        return both

    @property
    def stacked(self) -> np.ndarray:
        """(2 * size * size,) float32: the northern then the southern hemisphere, raveled (what the
        projection kernels read). Follows in-place changes of :attr:`north` and :attr:`south`, and is
        rebuilt when either is replaced."""
        both, north, south = getattr(self, "_stacked", (None, None, None))
        if both is None or self.north is not north or self.south is not south:
            both = self._stack(self.north, self.south)
        return both.reshape(-1)

    @property
    def size(self) -> int:
        """Side of the square Lambert arrays in pixels."""
        return int(self.north.shape[0])

    def __repr__(self) -> str:
        name = _phase_name(self.phase)
        return f"<MasterPattern {name or 'unknown phase'}, {self.kv:g} kV, {self.size} x {self.size} Lambert, from {self.source or '?'}>"

    def sample(self, vectors_crystal: np.ndarray) -> np.ndarray:
        """Intensity in the given crystal-frame directions, bilinearly interpolated.

        Parameters
        ----------
        vectors_crystal
            Directions (..., 3) in the crystal's Cartesian frame (normalised here).

        Returns
        -------
        numpy.ndarray
            (...) float32 intensities.
        """
        flat, shape = as_direction_array(vectors_crystal, "MasterPattern.sample")
        return _kernels.sample_master(self.north, self.south, flat).reshape(shape)

    def normalized(self) -> MasterPattern:
        """A copy with intensities scaled to zero mean and unit standard deviation over both hemispheres."""
        both = np.concatenate([self.north.ravel(), self.south.ravel()]).astype(np.float64)
        mean, std = both.mean(), both.std()
        std = std if std > 0 else 1.0
        return MasterPattern(
            (self.north - mean) / std, (self.south - mean) / std, self.kv, self.phase, self.source, dict(self.metadata)
        )

    @classmethod
    def from_emsoft(cls, path: str | os.PathLike, *, energy: str | float = "highest") -> MasterPattern:
        """Read an EMsoft EBSD master pattern file (``EMEBSDmaster`` output, HDF5).

        The square Lambert datasets ``EMData/EBSDmaster/mLPNH`` and ``mLPSH``
        (shape (numset, n_energies, n, n) in C order) are summed over the
        atom sites, as EMsoft and kikuchipy do.

        Parameters
        ----------
        path
            The HDF5 file.
        energy
            ``'highest'`` (default, as kikuchipy): the master pattern of the
            highest energy bin; ``'weighted'``: all energy bins averaged with
            the Monte Carlo energy histogram (``EMData/MCOpenCL/accum_e``) as
            weights, as EMsoft's EMEBSD does; or a number in keV: the
            nearest energy bin.

        Returns
        -------
        MasterPattern
            With ``phase`` a dict (name, space_group, lattice [nm, deg],
            atoms) read from ``CrystalData``.

        Raises
        ------
        MasterPatternError
            If the file is not an EMsoft master pattern file.
        """
        import h5py

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such master pattern file")
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise MasterPatternError(f"{path}: not a readable HDF5 file ({exc})") from exc
        with f:
            group = None
            for name in ("EMData/EBSDmaster", "EMData/TKDmaster", "EMData/ECPmaster"):
                if name in f and "mLPNH" in f[name]:
                    group = f[name]
                    break
            if group is None:
                raise MasterPatternError(
                    f"{path}: no 'EMData/EBSDmaster/mLPNH' dataset; expected an EMsoft EMEBSDmaster HDF5 file"
                )
            north_ds = group["mLPNH"]
            south_ds = group["mLPSH"] if "mLPSH" in group else None
            n_e = _lambert_energies(north_ds, path)
            if south_ds is None:
                _logger.warning("%s: no southern hemisphere (mLPSH); using the northern one for both", path)
            else:
                _lambert_energies(south_ds, path)
                if north_ds.shape != south_ds.shape:
                    raise MasterPatternError(f"{path}: mLPNH {north_ds.shape} and mLPSH {south_ds.shape} differ in shape")
            energies = np.atleast_1d(np.asarray(group["EkeVs"][()], dtype=np.float64)) if "EkeVs" in group else None
            if energies is None or energies.size != n_e:
                energies = np.arange(n_e, dtype=np.float64)
            weights = _energy_weights(f, energies, energy, path)
            north_2d = _lambert_weighted(north_ds, weights)
            south_2d = north_2d if south_ds is None else _lambert_weighted(south_ds, weights)
            kv = float(energies.max())  # the beam energy is the highest energy bin
            phase = _emsoft_phase(f, path)
        return cls(north_2d, south_2d, kv=float(kv), phase=phase, source=str(path),
                   metadata={"energies_kev": energies.tolist(), "energy_weights": weights.tolist()})


def _lambert_energies(ds: Any, path: Path) -> int:
    """Number of energy bins of an EMsoft Lambert dataset ((numset,) (n_energies,) n, n), checking its shape."""
    shape = ds.shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise MasterPatternError(f"{path}: {ds.name} has shape {shape}, expected (..., n, n) square Lambert arrays")
    if len(shape) > 4:
        raise MasterPatternError(f"{path}: {ds.name} has {len(shape)} dimensions, expected 2 to 4")
    return 1 if len(shape) == 2 else int(shape[-3])


def _lambert_weighted(ds: Any, weights: np.ndarray) -> np.ndarray:
    """(n, n) float32: the energy bins of a Lambert dataset summed with ``weights``, atom sites summed.

    Only the bins of non-zero weight are read (a file holds tens of them).
    """
    out = np.zeros(ds.shape[-2:], dtype=np.float64)
    for k in np.flatnonzero(weights):
        block = ds[()] if ds.ndim == 2 else ds[k] if ds.ndim == 3 else ds[:, k]
        block = np.asarray(block, dtype=np.float64)
        out += weights[k] * (block.sum(axis=0) if block.ndim == 3 else block)
    return out.astype(np.float32)


def _energy_weights(f: Any, energies: np.ndarray, energy: str | float, path: Path) -> np.ndarray:
    n_e = energies.size
    weights = np.zeros(n_e)
    if isinstance(energy, str):
        if energy == "highest":
            weights[int(np.argmax(energies))] = 1.0
            return weights
        if energy == "weighted":
            if "EMData/MCOpenCL/accum_e" not in f:
                raise MasterPatternError(f"{path}: energy='weighted' needs EMData/MCOpenCL/accum_e (the Monte Carlo energy histogram)")
            acc = np.asarray(f["EMData/MCOpenCL/accum_e"][()], dtype=np.float64)
            axes = [k for k, s in enumerate(acc.shape) if s == n_e]
            axis = axes[-1] if axes else None
            if axis is None:
                raise MasterPatternError(f"{path}: accum_e of shape {acc.shape} has no axis of {n_e} energy bins")
            w = acc.sum(axis=tuple(k for k in range(acc.ndim) if k != axis))
            if w.sum() <= 0:
                raise MasterPatternError(f"{path}: the Monte Carlo energy histogram is empty")
            return w / w.sum()
        raise ValueError(f"energy must be 'highest', 'weighted' or a number in keV, got {energy!r}")
    weights[int(np.argmin(np.abs(energies - float(energy))))] = 1.0
    return weights


def _emsoft_phase(f: Any, path: Path) -> dict[str, Any] | None:
    if "CrystalData" not in f:
        return None
    cd = f["CrystalData"]
    try:
        lattice = np.asarray(cd["LatticeParameters"][()], dtype=np.float64).ravel().tolist()
        sg = int(np.asarray(cd["SpaceGroupNumber"][()]).ravel()[0])
    except KeyError:
        _logger.warning("%s: CrystalData without LatticeParameters/SpaceGroupNumber; phase unknown", path)
        return None
    atoms = []
    if "AtomData" in cd and "Atomtypes" in cd:
        data = np.asarray(cd["AtomData"][()], dtype=np.float64)  # (5, n_atoms): x, y, z, occupancy, DW (nm^2)
        types = np.asarray(cd["Atomtypes"][()]).ravel()
        for k, z in enumerate(types):
            atoms.append({"Z": int(z), "xyz": data[:3, k].tolist(), "occupancy": float(data[3, k]), "debye_waller_nm2": float(data[4, k])})
    name = ""
    for key in ("EMData/EBSDmaster/xtalname", "NMLparameters/MCCLNameList/xtalname"):
        if key in f:
            raw = np.asarray(f[key][()]).ravel()[0]
            name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            name = Path(name.strip()).stem
            break
    return {"name": name, "space_group": sg, "lattice": lattice, "atoms": atoms}


def _phase_name(phase: Any) -> str:
    if phase is None:
        return ""
    if isinstance(phase, dict):
        return str(phase.get("name", ""))
    return str(getattr(phase, "name", ""))
