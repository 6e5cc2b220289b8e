"""Triplet look-up tables of interplanar angles."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.crystal import Phase
from kikuchi.index import build_triplet_table, triplet_table_for_phase
from kikuchi.index.triplets import laue_rotations


def test_nickel_table_families_and_angles():
    t = triplet_table_for_phase(Phase.parse("ni"), n_families=4)
    fam_sizes = np.bincount(t.family)
    assert fam_sizes.tolist() == [4, 3, 6, 12]  # {111} {200} {220} {311}, one pole per band
    assert len(t.symmetry) == 24
    # one of each antipodal pair, unit vectors
    assert np.allclose(np.linalg.norm(t.poles, axis=1), 1)
    assert np.abs(t.poles @ t.poles.T - np.eye(len(t.poles))).max() < 1 - 1e-6 + 1e-9
    # angles: acute, sorted by the first, and the {111}-{200} angle 54.74 deg is there
    assert np.all(np.diff(t.angles[:, 0]) >= 0) and t.angles.max() <= np.pi / 2 + 1e-12
    assert np.any(np.isclose(np.degrees(t.angles[:, 0]), 54.7356, atol=1e-3))
    # first_index points at the first row of each 0.5 degree bin
    k = 120  # 60 degrees
    assert np.all(t.angles[t.first_index[k]:, 0] >= np.radians(60) - 1e-12)
    assert np.all(t.angles[: t.first_index[k], 0] < np.radians(60))
    # one triplet per symmetry orbit: rotating a triplet's poles gives no other row
    rows = {tuple(r) for r in t.triplets.tolist()}
    perm = np.abs(np.einsum("sij,pj,qi->spq", t.symmetry, t.poles, t.poles)).argmax(axis=2)
    for p, q, r in list(rows)[:50]:
        images = {(perm[s, p], perm[s, q], perm[s, r]) for s in range(len(t.symmetry))}
        assert len(images & rows) == 1


def test_explicit_families_and_higher_orders_skipped():
    ni = Phase.parse("ni")
    t = triplet_table_for_phase(ni, families=[(1, 1, 1), (2, 0, 0)])
    assert len(t.poles) == 7
    auto = triplet_table_for_phase(ni, n_families=6)
    # {222} is the {111} band again: never a family of its own
    d = np.abs(auto.poles @ auto.poles.T) - np.eye(len(auto.poles))
    assert d.max() < 1 - 1e-6
    assert "{111} {002} {022} {131} {133} {024}" in repr(auto)
    with pytest.raises(ValueError, match=r"no reflector family \(1, 0, 0\)"):
        triplet_table_for_phase(ni, families=[(1, 0, 0)])


def test_hexagonal_phase_table():
    ti = Phase.parse("ti-alpha")
    rot = laue_rotations(ti)
    assert len(rot) == 12 and np.allclose(np.linalg.det(rot), 1)
    t = triplet_table_for_phase(ti)
    assert len(t.poles) > 10 and len(t.triplets) > 100


def test_bad_input_messages():
    with pytest.raises(ValueError, match="need at least 3 plane normals"):
        build_triplet_table(np.eye(3)[:2], np.eye(3, dtype=int)[:2], np.zeros(2), np.eye(3)[None])
    fourfold = np.array([[[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]])
    with pytest.raises(ValueError, match="not closed under its symmetry"):
        build_triplet_table(np.array([[1.0, 0, 0], [0, 0, 1], [1, 1, 1]]), np.array([[1, 0, 0], [0, 0, 1], [1, 1, 1]]), np.arange(3), fourfold)
    with pytest.raises(ValueError, match="must match normals"):
        build_triplet_table(np.eye(3), np.eye(3, dtype=int), np.zeros(2), np.eye(3)[None])
