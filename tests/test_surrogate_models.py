"""Surrogate networks: invariances of the graph model, the path-spectrum layer's physics,
and saving and reloading (``.keras``, safe_mode on, no Lambda)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from ase.cluster import Octahedron
from scipy.spatial.transform import Rotation

from mlxas.surrogate.environments import environments
from mlxas.surrogate.grids import exafs_grid, xanes_grid
from mlxas.surrogate.kinds import KINDS, DescriptorMLP, GraphNetwork, kind_class
from mlxas.surrogate.model import Surrogate

GRID = exafs_grid(0.05, 16.0, 0.05)


def _cluster():
    atoms = Octahedron("Cu", 5, 1)
    atoms.rattle(0.05, seed=4)
    return atoms


def _env(atoms=None, sites=(0, 4, 9, 17)):
    return environments(_cluster() if atoms is None else atoms, list(sites), 5.0)


def _untrained(kind, n_sites=4):
    """A freshly built (random-weight) network wrapped as a Surrogate, no training."""
    env = _env()
    x = kind.featurize(env)
    targets = np.random.default_rng(0).normal(size=(len(env), len(kind.grid))).astype("f4")
    model = kind.build(x, targets)
    return Surrogate.from_network(model, kind, env, targets)


SMALL = {
    "units": 8,
    "interactions": 1,
    "channels": 2,
    "n_basis": 8,
    "n_k_basis": 8,
    "n_l_basis": 4,
    "head": [16],
    "dl": 0.02,
}


def test_registry_names_the_kinds():
    assert set(KINDS) == {"descriptor_mlp", "graph"}
    assert kind_class("graph") is GraphNetwork
    with pytest.raises(ValueError, match="unknown surrogate kind 'gnn'"):
        kind_class("gnn")
    with pytest.raises(ValueError, match="unknown parameters"):
        GraphNetwork(GRID, ("Cu",), 5.0, {"layers": 3})


def test_graph_model_is_rotation_translation_and_permutation_invariant():
    sur = _untrained(GraphNetwork(GRID, ("Cu",), 5.0, SMALL))
    atoms = _cluster()
    ref = sur.predict(_env(atoms)).weighted
    assert np.abs(ref).max() > 0
    moved = atoms.copy()
    moved.positions = Rotation.random(random_state=3).apply(atoms.positions) + np.array(
        [1.0, 2.0, -3.0]
    )
    np.testing.assert_allclose(sur.predict(_env(moved)).weighted, ref, rtol=1e-3, atol=1e-4)
    # Permute the node slots of every graph and renumber the pairs accordingly.
    x = sur.featurize(_env(atoms))
    n = x["species"].shape[1]
    perm = np.random.default_rng(5).permutation(n)
    inv = np.argsort(perm)
    xp = dict(
        x,
        species=x["species"][:, perm],
        positions=x["positions"][:, perm],
        pairs=np.sort(inv[x["pairs"]], axis=-1),
    )
    xp["pairs"][x["pairs"][..., 0] == x["pairs"][..., 1]] = 0  # padding stays (0, 0)
    np.testing.assert_allclose(sur.predict_inputs(xp).weighted, ref, rtol=1e-3, atol=1e-4)


def test_path_spectrum_follows_the_exafs_phase():
    """One path of half length L: the layer's output is Im[A(k, L)·exp(2ikL)] with A from
    its own basis, and spreading on the L grid costs well under 1 % at this grid."""
    import keras

    from mlxas.surrogate.layers import PathSpectrum

    layer = PathSpectrum(
        2, 0.05, 16.0, 0.05, l_min=1.0, l_max=5.0, dl=0.03, n_k_basis=12, n_l_basis=5
    )
    L = np.array([[2.5437, 3.9012]], dtype="f4")  # between grid points
    w = np.array([[[0.7, -0.2], [0.0, 0.4]]], dtype="f4")
    out = keras.ops.convert_to_numpy(layer([L, w]))[0]
    theta = keras.ops.convert_to_numpy(layer.theta)
    k = GRID.values
    kc = np.linspace(0.05, 16.0, 12)
    pk = np.exp(-0.5 * ((k[None] - kc[:, None]) / (kc[1] - kc[0])) ** 2)
    lc = np.linspace(1.0, 5.0, 5)
    expect = np.zeros_like(k)
    for q in range(2):
        ql = np.clip(1 - np.abs(L[0, q] - lc) / (lc[1] - lc[0]), 0, None)
        for c in range(2):
            a = np.einsum("ab,ak,b->k", theta[0, c], pk, ql)
            b = np.einsum("ab,ak,b->k", theta[1, c], pk, ql)
            expect += w[0, q, c] * (a * np.sin(2 * k * L[0, q]) + b * np.cos(2 * k * L[0, q]))
    err = np.sqrt(((out - expect) ** 2).sum() / (expect**2).sum())
    assert err < 0.01
    # A path beyond the grid contributes nothing.
    far = keras.ops.convert_to_numpy(layer([np.array([[6.0, 0.0]], "f4"), w]))
    assert np.abs(far).max() == 0.0


@pytest.mark.parametrize(
    ("kind_cls", "grid"),
    [(GraphNetwork, GRID), (GraphNetwork, xanes_grid()), (DescriptorMLP, GRID)],
)
def test_save_and_reload_give_the_same_spectra(tmp_path, kind_cls, grid):
    params = SMALL if kind_cls is GraphNetwork else {"hidden": [16]}
    sur = _untrained(kind_cls(grid, ("Cu",), 5.0, params))
    env = _env()
    before = sur.predict(env).spectra
    folder = sur.save(tmp_path / "store")
    assert folder.name == sur.model_id and folder.parent == tmp_path / "store"
    with zipfile.ZipFile(folder / "model.keras") as zf:
        config = json.loads(zf.read("config.json"))
    assert "Lambda" not in json.dumps(config)
    again = Surrogate.load(folder)
    np.testing.assert_allclose(again.predict(env).spectra, before, rtol=1e-5, atol=1e-6)
    assert again.grid == grid and again.kind.params == sur.kind.params
    assert again.model_id == sur.model_id and again.card["kind"] == "surrogate"


def test_saved_folder_is_bound_by_its_card(tmp_path):
    """Every file of the folder is listed with its SHA-256; a changed file is refused."""
    from mlxas.models.card import ModelLoadError, file_sha256

    sur = _untrained(DescriptorMLP(GRID, ("Cu",), 5.0, {"hidden": [16]}))
    folder = sur.save(tmp_path / "store")
    card = json.loads((folder / "card.json").read_text())
    assert set(card["files"]) == {"model.keras", "ood.json", "training_band.json"}
    for name, digest in card["files"].items():
        assert digest == file_sha256(folder / name)
    with open(folder / "ood.json", "a") as fh:
        fh.write(" ")  # one byte more: the statistics the routing trusts were changed
    with pytest.raises(ModelLoadError, match=r"ood\.json: SHA-256"):
        Surrogate.load(folder)


def test_label_model_cards_are_not_surrogate_cards():
    from mlxas.models.card import ModelLoadError
    from mlxas.surrogate.model import check_surrogate_card

    with pytest.raises(ModelLoadError, match="'mlp' model, not a surrogate"):
        check_surrogate_card({"card_version": 2, "kind": "mlp"}, "models/mlp/0123")
    with pytest.raises(ModelLoadError, match="surrogate card layout 1"):
        check_surrogate_card(
            {"kind": "surrogate", "surrogate": {}, "surrogate_card_version": 1}, "m"
        )


def test_save_refuses_lambda_layers(tmp_path):
    import keras

    from mlxas.models.card import ModelLoadError

    kind = DescriptorMLP(GRID, ("Cu",), 5.0, {"hidden": [16]})
    env = _env()
    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    sur = Surrogate.from_network(model, kind, env, np.zeros((len(env), len(GRID)), "f4"))
    with pytest.raises(ModelLoadError, match="Lambda"):
        sur.save(tmp_path / "store")
    assert not any((tmp_path / "store").iterdir())  # nothing half-written is left


def test_descriptor_inputs_name_the_absorbing_element():
    """The symmetry functions describe the neighbours only: one network serving several
    absorbers (XANES of many metals) must see which element absorbs."""
    from ase.build import bulk

    nio = bulk("NiO", "rocksalt", a=4.177, cubic=True)
    ni, o = nio.get_chemical_symbols().index("Ni"), nio.get_chemical_symbols().index("O")
    kind = DescriptorMLP(xanes_grid(), ("Mn", "Ni", "O"), 5.0)
    x = kind.featurize(environments(nio, [ni, o], 5.0))["descriptors"]
    assert x[:, -3:].tolist() == [[0, 1, 0], [0, 0, 1]]
    plain = DescriptorMLP(xanes_grid(), ("Mn", "Ni", "O"), 5.0, {"absorber_onehot": False})
    assert plain.featurize(environments(nio, [ni], 5.0))["descriptors"].shape[1] == x.shape[1] - 3
