"""Reflectors: systematic absences, structure factors, Bragg angles, families, selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kikuchi.crystal import Phase, electron_scattering_factor, electron_wavelength_nm, reflectors, structure_factor
from kikuchi.crystal.spacegroup import absent_by_symmetry


def _all_hkl(limit: int) -> np.ndarray:
    r = np.arange(-limit, limit + 1)
    hkl = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return hkl[np.any(hkl != 0, axis=1)]


def _has(ref, hkl) -> bool:
    hkl = np.asarray(hkl)
    return bool(np.any(np.all(ref.hkl == hkl, axis=1) | np.all(ref.hkl == -hkl, axis=1)))


def test_fcc_absences_from_symmetry_operations():
    hkl = _all_hkl(6)
    mixed = np.any(hkl % 2 != hkl[:, :1] % 2, axis=1)
    np.testing.assert_array_equal(absent_by_symmetry(hkl, 225), mixed)
    ref = reflectors("ni", d_min_nm=0.06, min_intensity=0)
    parity = ref.hkl % 2
    assert np.all(parity == parity[:, :1])
    # complete: every unmixed hkl (one of +-) with d >= d_min is there
    ni = Phase.parse("ni")
    expected = hkl[~mixed & (ni.d_spacing_nm(hkl) >= 0.06)]
    assert len(ref) == len(expected) // 2


def test_bcc_absences():
    hkl = _all_hkl(4)
    np.testing.assert_array_equal(absent_by_symmetry(hkl, 229), hkl.sum(axis=1) % 2 == 1)
    ref = reflectors("fe-alpha", min_intensity=0)
    assert np.all(ref.hkl.sum(axis=1) % 2 == 0)
    assert ref.family_hkl[0].tolist() == [1, 1, 0]


def test_diamond_silicon():
    si = Phase.parse("si")
    # 200: forbidden by the d glide (systematic); 222: allowed by the space group,
    # but zero from the atoms on 8a (kinematically absent)
    assert absent_by_symmetry([[2, 0, 0], [2, 2, 2]], 227).tolist() == [True, False]
    F = structure_factor(si, [[2, 2, 2], [4, 2, 0], [1, 1, 1], [2, 2, 0], [4, 0, 0]])
    assert np.all(np.abs(F[:2]) < 1e-9)
    ref = reflectors(si, min_intensity=0)
    for absent in ([2, 0, 0], [2, 2, 2], [4, 2, 0], [6, 0, 0]):
        assert not _has(ref, absent), absent
    for present in ([1, 1, 1], [2, 2, 0], [3, 1, 1], [4, 0, 0], [3, 3, 1], [4, 2, 2]):
        assert _has(ref, present), present
    # all allowed: h, k, l all odd, or all even with h + k + l = 4n
    odd = np.all(ref.hkl % 2 == 1, axis=1)
    even = np.all(ref.hkl % 2 == 0, axis=1) & (ref.hkl.sum(axis=1) % 4 == 0)
    assert np.all(odd | even)


def test_zincblende_has_200_unlike_diamond():
    gan = Phase.parse("gan-zincblende")
    f200 = abs(structure_factor(gan, [[2, 0, 0]])[0])
    s = 0.5 / gan.d_spacing_nm([[2, 0, 0]])[0]
    fga = electron_scattering_factor("Ga", s / 10) * math.exp(-0.0028 * s**2)
    fn = electron_scattering_factor("N", s / 10) * math.exp(-0.0032 * s**2)
    assert f200 == pytest.approx(4 * (fga - fn), rel=1e-9)  # Ga at 0, N at 1/4 1/4 1/4
    assert _has(reflectors(gan), [2, 0, 0])


def test_wurtzite_0001_absent_0002_present():
    assert absent_by_symmetry([[0, 0, 1], [0, 0, 2], [0, 0, 3], [1, 0, 0]], 186).tolist() == [True, False, True, False]
    ref = reflectors("gan-wurtzite")
    assert not _has(ref, [0, 0, 1]) and not _has(ref, [0, 0, 3])
    assert _has(ref, [0, 0, 2]) and _has(ref, [1, 0, 0]) and _has(ref, [1, 0, 1])
    assert ref.labels()[0] == "0002"  # strongest: the basal plane


def test_hcp_titanium():
    ti = Phase.parse("ti-alpha")
    ref = reflectors(ti, min_intensity=0)
    assert not _has(ref, [0, 0, 1]) and _has(ref, [0, 0, 2])
    # hcp: h - k = 3n with l odd is zero (2c site), e.g. 11-21 -> (1, 1, 1)
    assert abs(structure_factor(ti, [[1, 1, 1]])[0]) < 1e-9
    assert not _has(ref, [1, 1, 1])
    # plane normals: (0001) || z, (10-10) normal || a* (perpendicular to b and c)
    n = ti.plane_normals([[0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(n[0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(n[1], [math.sqrt(3) / 2, 0.5, 0], atol=1e-12)


def test_structure_factor_values():
    ni = Phase.parse("ni")
    b = ni.atoms[0].b_iso_nm2
    hkl = np.array([[1, 1, 1], [2, 0, 0], [2, 2, 0]])
    s = 0.5 / ni.d_spacing_nm(hkl)
    expected = 4 * electron_scattering_factor("Ni", s / 10) * np.exp(-b * s**2)
    np.testing.assert_allclose(structure_factor(ni, hkl).real, expected, rtol=1e-12)
    np.testing.assert_allclose(structure_factor(ni, hkl).imag, 0, atol=1e-12)
    # Si 111: |1 + exp(i pi 3/2)| = sqrt(2) times the fcc sum
    si = Phase.parse("si")
    s = 0.5 / si.d_spacing_nm([[1, 1, 1]])[0]
    f = electron_scattering_factor("Si", s / 10) * math.exp(-si.atoms[0].b_iso_nm2 * s**2)
    assert abs(structure_factor(si, [[1, 1, 1]])[0]) == pytest.approx(4 * math.sqrt(2) * f, rel=1e-12)


def test_debye_waller_damps_high_orders():
    hot = Phase("ni", 225, Phase.parse("ni").lattice, [{"element": "Ni", "xyz": (0, 0, 0), "b_iso_nm2": 0.02}])
    cold = Phase("ni", 225, Phase.parse("ni").lattice, [{"element": "Ni", "xyz": (0, 0, 0), "b_iso_nm2": 0.0}])
    hkl = [[1, 1, 1], [4, 4, 4]]
    ratio = np.abs(structure_factor(hot, hkl)) / np.abs(structure_factor(cold, hkl))
    s = 0.5 / cold.d_spacing_nm(hkl)
    np.testing.assert_allclose(ratio, np.exp(-0.02 * s**2))
    assert ratio[1] < ratio[0] < 1


def test_d_spacing_and_bragg_angle():
    ref = reflectors("ni", kv=20.0)
    a = Phase.parse("ni").lattice[0]
    i111 = int(np.flatnonzero(np.all(ref.hkl == [1, 1, 1], axis=1))[0])
    assert ref.d_nm[i111] == pytest.approx(a / math.sqrt(3))
    lam = electron_wavelength_nm(20.0)
    np.testing.assert_allclose(np.sin(ref.bragg_angle), lam / (2 * ref.d_nm))
    assert math.degrees(ref.bragg_angle[i111]) == pytest.approx(1.2094, abs=1e-3)
    # higher voltage: narrower bands
    assert np.all(reflectors("ni", kv=30.0).bragg_angle < ref.bragg_angle)


def test_normals_are_unit_and_match_cubic_directions():
    ref = reflectors("ni")
    np.testing.assert_allclose(np.linalg.norm(ref.normals, axis=1), 1)
    np.testing.assert_allclose(ref.normals, ref.hkl / np.linalg.norm(ref.hkl, axis=1, keepdims=True))


def test_families_and_selection():
    ref = reflectors("ni")
    assert ref.family_hkl[:4].tolist() == [[1, 1, 1], [2, 0, 0], [2, 2, 0], [3, 1, 1]]
    counts = np.bincount(ref.family)
    assert counts[:4].tolist() == [4, 3, 6, 12]  # planes per family (one of each +- pair)
    # strongest families first
    f2 = np.array([ref.structure_factor_sq[ref.family == i][0] for i in range(len(ref.family_hkl))])
    assert np.all(np.diff(f2) <= 1e-9)
    small = reflectors("ni", n=7)
    assert len(small) == 7 and small.family_hkl.tolist() == [[1, 1, 1], [2, 0, 0]]
    assert len(reflectors("ni", n=9)) == 7  # never half a family
    assert len(reflectors("ni", n=1)) == 4  # at least the strongest family
    strong = reflectors("ni", min_intensity=0.3)
    assert np.all(strong.structure_factor_sq >= 0.3 * ref.structure_factor_sq.max())
    sub = ref.select(ref.family == 2)
    assert len(sub) == 6 and sub.family_hkl.tolist() == [[2, 2, 0]] and set(sub.family.tolist()) == {0}


def test_hexagonal_families():
    ref = reflectors("ti-alpha")
    counts = dict(zip(map(tuple, ref.family_hkl.tolist()), np.bincount(ref.family)))
    assert counts[(0, 0, 2)] == 1 and counts[(1, 0, 0)] == 3 and counts[(1, 1, 0)] == 3 and counts[(1, 0, 1)] == 6
    labels = dict(zip(map(tuple, ref.hkl.tolist()), ref.labels()))
    assert labels[(0, 0, 2)] == "0002" and labels[(1, 0, 0)] == "10-10"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d_min_nm": -1}, "d_min_nm must be positive"),
        ({"n": 0}, "n must be a positive number of reflectors"),
        ({"min_intensity": -0.1}, "min_intensity must be >= 0"),
        ({"d_min_nm": 0.001}, r"below lambda/2"),
        ({"d_min_nm": 1.0}, "has no reflector with d >= 1.0 nm"),
    ],
)
def test_reflector_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reflectors("ni", **kwargs)


def test_reflectors_need_atoms():
    empty = Phase("empty", 225, (0.4, 0.4, 0.4, 90, 90, 90))
    with pytest.raises(ValueError, match="phase 'empty' has no atom sites"):
        reflectors(empty)
