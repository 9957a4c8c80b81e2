"""Structure ids survive the trip through structures.extxyz as the exact text written."""

from __future__ import annotations

import ase.io
from ase import Atoms

from mlxas.structures import read_structures


def test_hex_ids_that_look_like_numbers_are_read_back_as_text(tmp_path):
    # 16-hex-digit ids that ASE's extxyz parser would read as numbers: a float exponent
    # (inf), digits with a leading zero, and a name with a space.
    ids = ["9437347514e45165", "0123456789012345", "1e10000000000000", "b894e4457ca65423"]
    images = []
    for i, sid in enumerate(ids):
        atoms = Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.9]])
        atoms.info = {"structure_id": sid, "source": "md 1", "name": f"00{i}", "frame": i}
        images.append(atoms)
    path = tmp_path / "structures.extxyz"
    ase.io.write(path, images, format="extxyz")

    back = read_structures(path)

    assert [a.info["structure_id"] for a in back] == ids
    assert [a.info["name"] for a in back] == ["000", "001", "002", "003"]
    assert {a.info["source"] for a in back} == {"md 1"}
    assert [int(a.info["frame"]) for a in back] == [0, 1, 2, 3]
