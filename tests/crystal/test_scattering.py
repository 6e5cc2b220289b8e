"""Electron scattering factors (Peng et al. 1996) and the relativistic wavelength."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.crystal import electron_scattering_factor, electron_wavelength_nm
from kikuchi.crystal.scattering import ELEMENTS, atomic_number, normalise_element

# Peng, Ren, Dudarev & Whelan (1996), Table 1 (0 <= s <= 2 1/Å): f(0) = sum a_i.
F_AT_ZERO = {"Ni": 6.5620, "Si": 5.8268, "N": 2.2135, "Ga": 7.1070, "Au": 10.5714, "H": 0.5288}

# The independent fit of the same paper for 0 <= s <= 6 1/Å (International
# Tables C, Table 4.3.2.3): (a1..a5), (b1..b5).
PENG_0_6 = {
    "Ni": ((0.2313, 1.0657, 1.8229, 2.2609, 1.1883), (0.1210, 1.2691, 5.6870, 27.0917, 83.0285)),
    "Si": ((0.0567, 0.3365, 0.8104, 2.4960, 2.1186), (0.0582, 0.6155, 3.2522, 16.7929, 57.6767)),
    "N": ((0.0267, 0.1328, 0.5301, 1.1020, 0.4215), (0.0541, 0.5165, 2.8207, 10.6297, 34.3764)),
    "Ga": ((0.2135, 0.9768, 1.6669, 2.5662, 1.6790), (0.1020, 1.0219, 4.6275, 22.8742, 80.1535)),
    "Au": ((0.3055, 1.3945, 2.9617, 3.8990, 2.0026), (0.0596, 0.5827, 3.1035, 11.9693, 47.9106)),
}

REQUIRED = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Zr Mo W Au Ag Sn Pb Nb Ta In"
).split()


def test_wavelength_20kv():
    assert electron_wavelength_nm(20.0) == pytest.approx(0.008588, abs=1e-6)


def test_wavelength_relativistic_values():
    # 200 kV: 2.5079 pm (textbook TEM value); 300 kV: 1.9687 pm
    assert electron_wavelength_nm(200) == pytest.approx(0.0025079, abs=2e-7)
    assert electron_wavelength_nm(300) == pytest.approx(0.0019687, abs=2e-7)
    # non-relativistic limit at low voltage: 1.22643 / sqrt(V) nm
    assert electron_wavelength_nm(0.1) == pytest.approx(1.22643 / np.sqrt(100), rel=1e-4)


@pytest.mark.parametrize("kv", [0, -5, float("nan")])
def test_wavelength_rejects_bad_voltage(kv):
    with pytest.raises(ValueError, match="positive number of kV"):
        electron_wavelength_nm(kv)


def test_required_elements_are_tabulated():
    assert set(REQUIRED) <= set(ELEMENTS)
    assert [atomic_number(e) for e in ("H", "Zn", "Ga", "W", "Pb")] == [1, 30, 31, 74, 82]


@pytest.mark.parametrize(("element", "f0"), sorted(F_AT_ZERO.items()))
def test_forward_scattering_is_sum_of_amplitudes(element, f0):
    assert float(electron_scattering_factor(element, 0.0)) == pytest.approx(f0, abs=1e-4)


@pytest.mark.parametrize("element", sorted(PENG_0_6))
def test_agrees_with_the_wide_range_fit(element):
    a, b = (np.array(x) for x in PENG_0_6[element])
    s = np.linspace(0.0, 1.0, 21)
    wide = (a[None] * np.exp(-b[None] * s[:, None] ** 2)).sum(axis=1)
    np.testing.assert_allclose(electron_scattering_factor(element, s), wide, rtol=0.015)


def test_decreasing_and_heavier_scatters_more():
    s = np.linspace(0, 2, 50)
    f = electron_scattering_factor("Cu", s)
    assert np.all(np.diff(f) < 0)
    assert electron_scattering_factor("Au", 0.3) > electron_scattering_factor("Cu", 0.3) > electron_scattering_factor("Al", 0.3)


def test_element_spelling_and_unknown_element():
    assert normalise_element(" fe ") == "Fe"
    assert normalise_element("Fe3+") == "Fe"
    with pytest.raises(ValueError, match=r"no electron scattering factor for element 'Xx'.*Ni"):
        normalise_element("Xx")
