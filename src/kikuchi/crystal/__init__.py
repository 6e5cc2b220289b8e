"""Crystal phases, space groups, reflectors and kinematical structure factors.

Lengths are in nm, angles in degrees; the Cartesian crystal frame is orix's
(x || a, z || c*). See docs/crystal.md.
"""

from __future__ import annotations

from kikuchi.crystal.phase import BUILTIN_PHASES, AssumedAtomsWarning, Atom, Phase, PhaseError
from kikuchi.crystal.reflectors import Reflectors, reflectors, structure_factor
from kikuchi.crystal.scattering import electron_scattering_factor, electron_wavelength_nm

__all__ = [
    "AssumedAtomsWarning",
    "Atom",
    "BUILTIN_PHASES",
    "Phase",
    "PhaseError",
    "Reflectors",
    "electron_scattering_factor",
    "electron_wavelength_nm",
    "reflectors",
    "structure_factor",
]
