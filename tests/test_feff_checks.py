"""Bad FEFF inputs and damaged outputs, each flagged with its own reason.

Bad inputs run through the real engines (FEFF8L, FEFF6L, FEFF10): the reasons come from
the messages those engines print.  Damaged outputs are made from a real FEFF8L run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk

from conftest import DATA
from mlxas.engines import ItemInput
from mlxas.engines import get_engine as signal_engine
from mlxas.feff.cards import merged_cards
from mlxas.feff.checks import LOG_REASONS, RunFailure, check_outputs, first_fatal
from mlxas.feff.engines import get_engine
from mlxas.feff.inputs import InputError, cluster_around, feff_input_text
from mlxas.simulation.runner import run_item
from mlxas.workflow.layout import DONE_MARKER, FAILURE_FILE, SimulationFolder

FEFF = DATA / "feff"
CASES = yaml.safe_load((FEFF / "bad_inputs" / "cases.yaml").read_text())


def _row(site_id: str, text: str) -> ItemInput:
    return ItemInput(site_id, "s", 0, text, f"hash-{site_id}")


def run_site(item: ItemInput, rundir: Path, engine: str, timeout: float):
    """Run ``item`` in the source folder two levels above ``rundir`` (``runs/<item>``)."""
    assert rundir.name == item.item_id and rundir.parent.name == "runs"
    folder = SimulationFolder(rundir.parent.parent)
    return run_item(item, signal_engine(engine, {}), folder, timeout)


@pytest.mark.parametrize("log", sorted((FEFF / "good_logs").glob("*.log")), ids=lambda p: p.stem)
def test_good_logs_hold_no_failure(log):
    """Logs of successful runs (SCF, FMS and XANES included) match no failure pattern."""
    assert first_fatal(log.read_text()) is None


@pytest.mark.parametrize(
    ("engine", "case"),
    [(engine, case) for engine, cases in CASES.items() for case in cases],
    ids=lambda x: x,
)
def test_bad_input_corpus_through_real_feff(engine, case, tmp_path):
    expected = CASES[engine][case]["reason"]
    text = (FEFF / "bad_inputs" / engine / f"{case}.inp").read_text()
    res = run_site(_row(case, text), tmp_path / "runs" / case, engine, timeout=120)
    assert (res.status, res.reason) == ("failed", expected), res.detail
    assert res.detail.startswith("FEFF log: ")
    # Quarantined with its reason; nothing left in the runs folder.
    qdir = tmp_path / "quarantine" / case
    record = json.loads((qdir / FAILURE_FILE).read_text())
    assert record["reason"] == expected and record["input_hash"] == f"hash-{case}"
    assert (qdir / "feff.inp").read_text() == text and (qdir / "feff.log").is_file()
    assert not (tmp_path / "runs" / case).exists()


def test_good_corpus_input_runs_clean(tmp_path):
    text = (FEFF / "bad_inputs" / "feff8l" / "good.inp").read_text()
    res = run_site(_row("good", text), tmp_path / "runs" / "good", "feff8l", timeout=120)
    assert res.ok, res.detail
    assert (tmp_path / "runs" / "good" / DONE_MARKER).is_file()


def _cu_cluster(radius: float) -> tuple[list[str], np.ndarray]:
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(int(2 * radius / 3.61) + 3)
    crystal.pbc = False
    centre = int(np.argmin(np.linalg.norm(crystal.positions - crystal.positions.mean(0), axis=1)))
    return cluster_around(crystal, centre, radius)


def test_feff10_too_many_atoms(tmp_path):
    syms, xyz = _cu_cluster(23.0)
    assert len(syms) > 4000
    text = feff_input_text(syms, xyz, merged_cards("feff10", "K", {"RPATH": 4.0}), "big")
    res = run_site(_row("big", text), tmp_path / "runs" / "big", "feff10", timeout=120)
    assert res.reason == "too_many_atoms", res.detail


@pytest.mark.parametrize("engine", ["feff8l", "feff6l", "feff10"])
def test_too_many_atoms_is_refused_before_feff(engine):
    eng = get_engine(engine)
    syms, xyz = _cu_cluster({500: 11.5, 1000: 14.3, 4000: 23.0}[eng.max_atoms])
    cards = merged_cards(engine, "K", {})
    with pytest.raises(InputError) as err:
        feff_input_text(syms, xyz, cards, "big", eng.max_atoms, eng.max_potentials)
    assert err.value.reason == "too_many_atoms"
    assert f"engine allows {eng.max_atoms}" in err.value.detail


def test_too_many_potentials_is_refused_before_feff():
    syms = ["Cu", "H", "He", "Li", "Be", "B", "C", "N", "O"]
    xyz = np.arange(27, dtype=float).reshape(9, 3) * 2.0
    with pytest.raises(InputError) as err:
        feff_input_text(syms, xyz, {}, "many", max_potentials=8)
    assert err.value.reason == "too_many_potentials"


def test_log_reasons_are_documented():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "feff.md").read_text()
    for reason in [*LOG_REASONS, "timeout", "missing_output", "truncated_output"]:
        assert f"`{reason}`" in doc


# --- damaged outputs --------------------------------------------------------------------

GOOD = FEFF / "outputs" / "feff8l_cu_k"


def _rows(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text().splitlines(keepends=True)
    head = [ln for ln in lines if ln.lstrip().startswith("#")]
    data = [ln for ln in lines if not ln.lstrip().startswith("#")]
    return head, data


def _set_value(line: str, col: int, value: str) -> str:
    words = line.split()
    words[col] = value
    return "  ".join(words) + "\n"


def _damage(kind: str, run: Path) -> None:
    chi_head, chi = _rows(run / "chi.dat")
    xmu_head, xmu = _rows(run / "xmu.dat")
    if kind == "chi_truncated_rows":  # killed between two writes
        chi = chi[:200]
    elif kind == "chi_truncated_midrow":
        chi = [*chi[:150], chi[150][:18]]
    elif kind == "chi_empty":
        chi_head, chi = [], []
    elif kind == "chi_nan":
        chi[120] = _set_value(chi[120], 1, "NaN")
    elif kind == "chi_inf":
        chi[60] = _set_value(chi[60], 1, "-Infinity")
    elif kind == "chi_fortran_overflow":
        chi[90] = _set_value(chi[90], 1, "************")
    elif kind == "chi_all_zero":
        chi = [_set_value(ln, 1, "0.000000E+00") for ln in chi]
    elif kind == "mu_all_zero":
        xmu = [_set_value(ln, 3, "0.00000E+00") for ln in xmu]
    elif kind == "k_not_monotonic":
        chi[100], chi[101] = chi[101], chi[100]
    elif kind == "energy_not_monotonic":
        xmu[30], xmu[31] = xmu[31], xmu[30]
    elif kind == "xmu_nan":
        xmu[10] = _set_value(xmu[10], 3, "nan")
    elif kind == "xmu_missing":
        (run / "xmu.dat").unlink()
        return
    (run / "chi.dat").write_text("".join(chi_head + chi))
    (run / "xmu.dat").write_text("".join(xmu_head + xmu))


DAMAGE = {
    "chi_truncated_rows": "truncated_output",
    "chi_truncated_midrow": "truncated_output",
    "chi_empty": "truncated_output",
    "chi_nan": "nan_in_output",
    "chi_inf": "nan_in_output",
    "chi_fortran_overflow": "nan_in_output",
    "chi_all_zero": "all_zero",
    "mu_all_zero": "all_zero",
    "k_not_monotonic": "non_monotonic_grid",
    "energy_not_monotonic": "non_monotonic_grid",
    "xmu_nan": "nan_in_output",
    "xmu_missing": "missing_output",
}


def test_reference_output_passes(tmp_path):
    out = check_outputs(GOOD, ("chi.dat", "xmu.dat"), 20.0)
    assert len(out.k) == 400 and out.k[0] == pytest.approx(0.05) and out.k[-1] == 20.0
    assert np.all(np.diff(out.energy) > 0)
    # E0: where FEFF's k column is zero, near the tabulated Cu K edge (8979 eV).
    assert abs(out.e0 - 8979.0) < 15


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_output_is_flagged(kind, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(GOOD, run)
    _damage(kind, run)
    with pytest.raises(RunFailure) as err:
        check_outputs(run, ("chi.dat", "xmu.dat"), 20.0)
    assert err.value.reason == DAMAGE[kind], err.value.detail


def test_damaged_result_of_a_finished_run_is_rerun(tmp_path):
    """A done run whose stored result was damaged afterwards is not reused: it runs again."""
    from mlxas.workflow.layout import RESULT_FILE

    text = (FEFF / "bad_inputs" / "feff8l" / "good.inp").read_text()
    rundir = tmp_path / "runs" / "s"
    first = run_site(_row("s", text), rundir, "feff8l", timeout=120)
    assert first.ok
    log_mtime = (rundir / "feff.log").stat().st_mtime_ns
    result = rundir / RESULT_FILE
    result.write_bytes(result.read_bytes()[:100])  # cut short, as by a full disk
    again = run_site(_row("s", text), rundir, "feff8l", timeout=120)
    assert again.ok and np.allclose(again.arrays["chi"], first.arrays["chi"])
    assert (rundir / "feff.log").stat().st_mtime_ns != log_mtime  # FEFF ran again


def test_xanes_output_checks():
    xanes = FEFF / "outputs" / "feff10_cu_k_xanes"
    eng = get_engine("feff10")
    text = (xanes / "feff.inp").read_text()
    assert eng.spectroscopy(text) == "xanes" and eng.outputs(text) == ("xmu.dat",)
    out = check_outputs(xanes, eng.outputs(text), eng.expected_kmax(text))
    assert out.k.size == 0 and out.energy.size > 50
    # FEFF normalises mu to 1 above the edge; it starts below 0.1 before the edge.
    assert out.mu[0] < 0.1 and 0.8 < out.mu[-1] < 1.2
