"""Phases: built-ins, compact form, CIF, CTF/ANG header phases, orix frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

import kikuchi
from kikuchi.crystal import BUILTIN_PHASES, AssumedAtomsWarning, Atom, Phase, PhaseError
from kikuchi.crystal.phase import direct_matrix
from kikuchi.crystal.spacegroup import default_space_group, expand_site, space_group_number
from kikuchi.io.orientation_map import OrientationMapWarning
from tests.conftest import shared_file

REQUIRED_BUILTINS = ["ni", "al", "cu", "fe-alpha", "fe-gamma", "si", "gan-wurtzite", "gan-zincblende", "ti-alpha", "mg"]


def test_builtins_present_with_real_structures():
    assert set(REQUIRED_BUILTINS) <= set(BUILTIN_PHASES)
    expected = {  # space group, a (nm), atoms per unit cell
        "ni": (225, 0.3524, 4), "al": (225, 0.40495, 4), "cu": (225, 0.36149, 4),
        "fe-alpha": (229, 0.28665, 2), "fe-gamma": (225, 0.3591, 4), "si": (227, 0.5431, 8),
        "gan-wurtzite": (186, 0.3189, 4), "gan-zincblende": (216, 0.4503, 8),
        "ti-alpha": (194, 0.29508, 2), "mg": (194, 0.32094, 2),
    }
    for name, (sg, a, n_atoms) in expected.items():
        phase = Phase.parse(name)
        assert phase.space_group == sg
        assert phase.lattice[0] == pytest.approx(a, rel=1e-4)
        assert len(phase.unit_cell()[0]) == n_atoms, name
        assert all(0.001 < atom.b_iso_nm2 < 0.02 for atom in phase.atoms)
    assert Phase.parse("mg").lattice[2] / Phase.parse("mg").lattice[0] == pytest.approx(1.624, abs=0.002)
    assert Phase.parse("ti-alpha").lattice[2] / Phase.parse("ti-alpha").lattice[0] == pytest.approx(1.588, abs=0.002)


def test_builtin_aliases():
    assert Phase.parse("Nickel") is BUILTIN_PHASES["ni"]
    assert Phase.parse("FE-ALPHA") is BUILTIN_PHASES["fe-alpha"]
    assert Phase.parse("austenite") is BUILTIN_PHASES["fe-gamma"]


def test_unknown_name_lists_builtins():
    with pytest.raises(PhaseError, match=r"unknown phase 'unobtainium'; built-in phases: ni, al, cu, fe-alpha.*mg"):
        Phase.parse("unobtainium")


def test_d_spacings():
    ni = Phase.parse("ni")
    a = ni.lattice[0]
    np.testing.assert_allclose(ni.d_spacing_nm([[1, 1, 1], [2, 0, 0], [2, 2, 0]]), [a / math.sqrt(3), a / 2, a / math.sqrt(8)])
    ti = Phase.parse("ti-alpha")
    a, c = ti.lattice[0], ti.lattice[2]
    # hexagonal: 1/d^2 = 4/3 (h^2 + hk + k^2)/a^2 + l^2/c^2
    d = ti.d_spacing_nm([[1, 0, 0], [0, 0, 2], [1, 0, 1]])
    np.testing.assert_allclose(d, [a * math.sqrt(3) / 2, c / 2, 1 / math.sqrt(4 / (3 * a**2) + 1 / c**2)])


@pytest.mark.parametrize("lattice", [(0.3, 0.3, 0.5, 90, 90, 120), (0.5, 0.6, 0.7, 80, 95, 105), (0.9, 1.7, 0.5, 90, 103.7, 90)])
def test_crystal_frame_is_orix(lattice):
    phase = Phase("x", 2 if lattice[3] != 90 else (194 if lattice[5] == 120 else 12), lattice, (Atom("Fe", (0, 0, 0)),))
    base = np.asarray(phase.to_orix().structure.lattice.base) / 10.0  # orix in Å
    np.testing.assert_allclose(base, phase.direct_matrix, atol=1e-12)
    # x || a, z || c*
    assert np.allclose(phase.direct_matrix[0, 1:], 0)
    cstar = phase.reciprocal_matrix[2]
    np.testing.assert_allclose(cstar / np.linalg.norm(cstar), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(phase.direct_matrix @ phase.reciprocal_matrix.T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("name", ["gan-wurtzite", "ti-alpha", "ni"])
def test_plane_normals_and_axes_are_orix_miller_vectors(name):
    from orix.vector import Miller

    phase = Phase.parse(name)
    hkl = [[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [1, -2, 3]]
    orix_phase = phase.to_orix()
    np.testing.assert_allclose(phase.plane_normals(hkl), Miller(hkl=hkl, phase=orix_phase).unit.data, atol=1e-12)
    axes = Miller(uvw=np.eye(3), phase=orix_phase).data / 10.0  # Å -> nm
    np.testing.assert_allclose(axes, phase.direct_matrix, atol=1e-12)


def test_orix_round_trip_and_point_groups():
    for name in REQUIRED_BUILTINS:
        phase = Phase.parse(name)
        orix_phase = phase.to_orix()
        assert orix_phase.point_group.name == phase.point_group.name
        back = Phase.from_orix(orix_phase)
        assert back.space_group == phase.space_group
        np.testing.assert_allclose(back.lattice, phase.lattice, rtol=1e-12)
        for a, b in zip(back.atoms, phase.atoms):
            assert a.element == b.element
            np.testing.assert_allclose(a.xyz, b.xyz)
            assert a.b_iso_nm2 == pytest.approx(b.b_iso_nm2)
    assert Phase.parse("gan-wurtzite").point_group.name == "6mm"
    assert Phase.parse("ti-alpha").laue_group.name == "6/mmm"
    assert Phase.parse("gan-zincblende").point_group.name == "-43m"


@pytest.mark.parametrize("name", ["gan-wurtzite", "ti-alpha", "si"])
def test_point_group_matrices_are_orix_symmetry(name):
    phase = Phase.parse(name)
    ours = phase.point_group_matrices()
    np.testing.assert_allclose(np.abs(np.linalg.det(ours)), 1, atol=1e-12)
    np.testing.assert_allclose(ours @ ours.transpose(0, 2, 1), np.broadcast_to(np.eye(3), ours.shape), atol=1e-12)
    # orix stores improper operations as a rotation plus an inversion flag
    det = np.linalg.det(ours)
    proper_parts = ours * det[:, None, None]
    theirs = np.asarray(phase.point_group.to_matrix())
    improper = np.asarray(phase.point_group.improper).ravel()
    assert len(ours) == len(theirs) and np.sum(det < 0) == np.sum(improper)
    for m, inv in zip(theirs, improper):  # the same set of operations
        match = np.abs(proper_parts - m).max(axis=(1, 2)) < 1e-9
        assert np.any(match & ((det < 0) == inv))


def test_hexagonal_site_generation():
    # hcp: 2c sites (1/3, 2/3, 1/4) and (2/3, 1/3, 3/4)
    np.testing.assert_allclose(expand_site([1 / 3, 2 / 3, 0.25], 194), [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]], atol=1e-9)
    _, xyz, _, _ = Phase.parse("gan-wurtzite").unit_cell()
    np.testing.assert_allclose(sorted(xyz[:, 2]), [0.0, 0.377, 0.5, 0.877], atol=1e-9)


# -- compact form -----------------------------------------------------------------
def test_compact_cubic_nm_and_builtin_atoms():
    phase = Phase.parse("ni:225:0.3524")
    assert phase.lattice == (0.3524, 0.3524, 0.3524, 90.0, 90.0, 90.0)
    assert phase.atoms == BUILTIN_PHASES["ni"].atoms


def test_compact_angstrom_rule_and_units():
    assert Phase.parse("ni:Fm-3m:3.524").lattice[0] == 0.3524  # all lengths >= 1.5: Å
    assert Phase.parse("ni:225:3.524A").lattice[0] == 0.3524
    assert Phase.parse("ni:225:3.524Å").lattice[0] == 0.3524
    assert Phase.parse("ni:225:0.3524nm").lattice[0] == 0.3524
    ti = Phase.parse("ti:P6_3/mmc:0.2951,0.4686")
    assert ti.lattice == (0.2951, 0.2951, 0.4686, 90.0, 90.0, 120.0)
    assert ti.atoms == BUILTIN_PHASES["ti-alpha"].atoms
    full = Phase.parse("fe:229:0.2866,0.2866,0.2866,90,90,90")
    assert full.atoms == BUILTIN_PHASES["fe-alpha"].atoms


def test_compact_unknown_name_assumes_atom_with_warning():
    with pytest.warns(AssumedAtomsWarning, match=r"phase 'zr' .*assuming Zr on the site at the origin"):
        zr = Phase.parse("zr:194:0.3232,0.5147")
    assert zr.atoms[0].element == "Zr"
    with pytest.warns(AssumedAtomsWarning, match="assuming Fe"):
        Phase.parse("sigma:136:0.88,0.456")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ni:225", r"expected NAME:SPACEGROUP:a\[,b,c,alpha,beta,gamma\]"),
        ("ni::0.35", "expected NAME:SPACEGROUP"),
        ("ni:999:0.35", "space group number must be 1-230"),
        ("ni:Xx-9:0.35", "unknown space group 'Xx-9'"),
        ("ni:225:0.35,abc", "cannot read the number 'abc'"),
        ("ni:225:0.35,0.35,0.35,90,90", "5 lattice values"),
        ("ti:194:0.295", r"1 lattice value\(s\) given for a hexagonal space group \(194\); give a,c"),
        ("ni:225:0.35,0.36,0.35", "a cubic space group .* needs a = b = c"),
        ("ni:225:0.03", "lattice length 0.03 nm is too small"),
        ("x:2:0.5,0.6,0.7,80,95,190", "angles must be below 180"),
    ],
)
def test_compact_errors(text, message):
    with pytest.raises(PhaseError, match=message):
        Phase.parse(text)


def test_space_group_symbols():
    assert space_group_number("Fd-3m") == 227
    assert space_group_number("P 63 m c") == 186
    assert default_space_group("m-3m", centring="I") == 229
    with pytest.raises(ValueError, match="unknown point group 'x'"):
        default_space_group("x")


def test_atom_validation_messages():
    with pytest.raises(PhaseError, match="occupancy must be in 0-1"):
        Atom("Ni", (0, 0, 0), occupancy=1.5)
    with pytest.raises(PhaseError, match="Debye-Waller factor must be >= 0"):
        Atom("Ni", (0, 0, 0), b_iso_nm2=-1)
    with pytest.raises(PhaseError, match="3 finite numbers"):
        Atom("Ni", (0, 0))
    with pytest.raises(ValueError, match="no electron scattering factor for element 'Qq'"):
        Atom("Qq", (0, 0, 0))
    with pytest.raises(PhaseError, match="do not form a unit cell"):
        direct_matrix((1, 1, 1, 150, 60, 60))


# -- CIF -----------------------------------------------------------------------------
TINY_CIF = """\
data_copper
_cell_length_a 3.6149
_cell_length_b 3.6149
_cell_length_c 3.6149
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
_space_group_IT_number 225
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
_atom_site_U_iso_or_equiv
Cu1 Cu 0 0 0 1.0 0.0067
"""


def test_read_tiny_cif(tmp_path):
    path = tmp_path / "cu.cif"
    path.write_text(TINY_CIF)
    phase = Phase.parse(str(path))
    assert phase.name == "copper"
    assert phase.space_group == 225
    assert phase.lattice == (0.36149, 0.36149, 0.36149, 90.0, 90.0, 90.0)
    assert len(phase.atoms) == 1 and phase.atoms[0].element == "Cu"
    assert phase.atoms[0].b_iso_nm2 == pytest.approx(0.0067 * 8 * math.pi**2 / 100)
    assert len(phase.unit_cell()[0]) == 4


@pytest.mark.parametrize("name", ["gan-wurtzite", "si", "ti-alpha"])
def test_cif_round_trip(tmp_path, name):
    phase = Phase.parse(name)
    path = phase.to_cif(tmp_path / f"{name}.cif")
    assert not list(tmp_path.glob(".*partial"))
    back = Phase.from_cif(path)
    assert back.name == name and back.space_group == phase.space_group
    np.testing.assert_allclose(back.lattice, phase.lattice, rtol=1e-9)
    assert [a.element for a in back.atoms] == [a.element for a in phase.atoms]
    for a, b in zip(back.atoms, phase.atoms):
        np.testing.assert_allclose(a.xyz, b.xyz, atol=1e-8)
        assert a.b_iso_nm2 == pytest.approx(b.b_iso_nm2, rel=1e-5)
    # the same unit cell after the round trip
    assert len(back.unit_cell()[0]) == len(phase.unit_cell()[0])


def test_cif_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="CIF file .*missing.cif not found"):
        Phase.parse(str(tmp_path / "missing.cif"))
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 3.0\nloop_\n_atom_site_label\n")
    with pytest.raises(PhaseError, match=r"bad.cif: "):
        Phase.from_cif(bad)


# -- header phases ------------------------------------------------------------------
def test_map_file_phase_dict():
    phase = Phase.from_phase_info({"id": 1, "name": "Ni", "space_group": 225, "lattice": [0.3524, 0.3524, 0.3524, 90, 90, 90]})
    assert phase.atoms == BUILTIN_PHASES["ni"].atoms and phase.lattice[0] == 0.3524
    assert Phase.from_dict(BUILTIN_PHASES["gan-wurtzite"].to_dict()) == BUILTIN_PHASES["gan-wurtzite"]


def test_header_phase_without_atoms_warns():
    info = {"name": "Zirconium oxide", "space_group": 14, "lattice_angstrom": (5.15, 5.21, 5.31), "angles_deg": (90, 99.2, 90)}
    with pytest.warns(AssumedAtomsWarning, match=r"'Zirconium oxide' \(space group P21/c, 14\) lists no atoms: assuming Zr"):
        phase = Phase.from_phase_info(info)
    assert phase.lattice == (0.515, 0.521, 0.531, 90.0, 99.2, 90.0)


def test_header_phase_with_laue_group_only_and_builtin_name():
    # no hkl families: the built-in phase of the name fixes the space group
    info = {"name": "Nickel", "laue_group": "m-3m", "lattice_angstrom": (3.52, 3.52, 3.52), "angles_deg": (90, 90, 90)}
    phase = Phase.parse(info)  # parse() hands dicts to from_phase_info
    assert phase.space_group == 225 and phase.atoms == BUILTIN_PHASES["ni"].atoms
    # an unknown name and no families: the symmorphic primitive group, with a warning
    info = {"name": "Unknownite", "laue_group": "6/mmm", "lattice_angstrom": (3, 3, 5), "angles_deg": (90, 90, 120)}
    with pytest.warns(AssumedAtomsWarning, match=r"P6/mmm, 191"):
        assert Phase.from_phase_info(info).space_group == 191


def test_header_phase_errors():
    with pytest.raises(PhaseError, match="phase 'x': no lattice parameters"):
        Phase.from_phase_info({"name": "x", "space_group": 225})
    with pytest.raises(PhaseError, match="phase 'x': neither a space group nor a point/Laue group"):
        Phase.from_phase_info({"name": "x", "lattice": [0.3, 0.3, 0.3, 90, 90, 90]})
    with pytest.raises(PhaseError, match="phase 'x': unknown point group 'bogus'"):
        Phase.from_phase_info({"name": "x", "laue_group": "bogus", "lattice": [0.3, 0.3, 0.3, 90, 90, 90]})


def test_ctf_header_phases():
    omap = kikuchi.read_orientation_map(shared_file("xcdskd/GaN_polytype_mixing.ctf"))
    wurtzite, zincblende = (Phase.from_phase_info(p) for p in omap.phases)
    assert (wurtzite.space_group, zincblende.space_group) == (186, 216)
    assert wurtzite.lattice == pytest.approx((0.3189, 0.3189, 0.5185, 90, 90, 120))
    assert zincblende.lattice[0] == pytest.approx(0.4364)
    # the name 'Ga N' resolves to the built-in GaN structures of the same space group
    assert wurtzite.atoms == BUILTIN_PHASES["gan-wurtzite"].atoms
    assert zincblende.atoms == BUILTIN_PHASES["gan-zincblende"].atoms


def test_ang_header_phase_without_space_group():
    with pytest.warns(OrientationMapWarning, match="subsampled"):  # the header of the whole scan over every 4th point
        omap = kikuchi.read_orientation_map(shared_file("mtex/S00.ANG"))
    phase = Phase.from_phase_info(omap.phases[0])
    # Laue class m-3m only; the hkl families 110, 200, 211, 310 show the I centring
    assert phase.space_group == 229
    assert phase.atoms == BUILTIN_PHASES["fe-alpha"].atoms
    assert phase.lattice[0] == pytest.approx(0.2866)


def test_ctf_phase_of_unknown_mineral_warns():
    with pytest.warns(OrientationMapWarning):  # the BS column left empty; a hexagonal grid in a CTF
        omap = kikuchi.read_orientation_map(shared_file("mtex/testdata_hex.ctf"))
    with pytest.warns(AssumedAtomsWarning, match="'Glaucophane'.*lists no atoms"):
        phase = Phase.from_phase_info(omap.phases[0])
    assert phase.point_group.laue.name == "2/m"


def _cif_with_operations(path, space_group, atom_xyz, shift):
    """A silicon CIF listing the operations of ``space_group`` with the origin moved by ``shift`` (x_cif = x + shift)."""
    from kikuchi.crystal import spacegroup
    from kikuchi.crystal.cif import _xyz_text

    rot, trans = spacegroup.symmetry_operations(space_group)
    ops = [_xyz_text(r, np.mod(t + (np.eye(3) - r) @ np.asarray(shift), 1.0)) for r, t in zip(rot, trans)]
    x, y, z = atom_xyz
    path.write_text(
        "data_si\n_cell_length_a 5.4310\n_cell_length_b 5.4310\n_cell_length_c 5.4310\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
        f"_space_group_IT_number {space_group}\n"
        "loop_\n_symmetry_equiv_pos_as_xyz\n" + "\n".join(f"'{op}'" for op in ops) + "\n"
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        f"Si1 Si {x} {y} {z}\n"
    )
    return path


def test_cif_in_origin_choice_2_gives_the_right_unit_cell(tmp_path):
    """Fd-3m origin choice 2 (Si at 1/8, 1/8, 1/8, as databases often list it): 8 atoms, 222 absent, 220 present."""
    from kikuchi.crystal import reflectors

    si = Phase.from_cif(_cif_with_operations(tmp_path / "si2.cif", 227, (0.125, 0.125, 0.125), (0.125, 0.125, 0.125)))
    assert len(si.unit_cell()[0]) == 8
    np.testing.assert_allclose(si.atoms[0].xyz, (0.0, 0.0, 0.0), atol=1e-12)
    assert reflectors(si, n=30).family_hkl.tolist() == reflectors("si", n=30).family_hkl.tolist() == [[1, 1, 1], [2, 2, 0], [4, 0, 0], [3, 1, 1]]
    # the setting used here (origin choice 1): atoms as written
    si1 = Phase.from_cif(_cif_with_operations(tmp_path / "si1.cif", 227, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))
    assert si1.atoms[0].xyz == (0.0, 0.0, 0.0) and len(si1.unit_cell()[0]) == 8


def test_cif_with_operations_of_another_setting_is_refused(tmp_path):
    # Fm-3m with the origin moved by 1/3 along a: no ITA origin choice, no multiple of 1/8
    path = _cif_with_operations(tmp_path / "odd.cif", 225, (0.0, 0.0, 0.0), (1 / 3, 0.0, 0.0))
    with pytest.raises(PhaseError, match=r"odd.cif: the symmetry operations listed are not those of space group 225 \(Fm-3m\)"):
        Phase.from_cif(path)
