"""MD-averaged EXAFS with the surrogate: every atom of every Au150 frame, against FEFF's
average over the sampled sites.

The Au150 Sutton–Chen MD of benchmarks/surrogate/au150_md_small.yaml (60 frames of 150
atoms) has FEFF8L Au L3 spectra for 5 sampled sites per frame (300).  The surrogate
(graph ensemble) is trained on the sites of the training frames only.  Compared:

- ``surrogate, all atoms``: mean chi(k) over all 9000 sites (what FEFF cannot afford);
- ``FEFF, sampled``: mean over the 300 FEFF sites (what the workflow has);
- ``surrogate, sampled``: the surrogate's mean over the same 300 sites, and over the
  test frames' sites alone (never trained on), against FEFF's mean over those.

The sampling noise of a 300-site average is estimated from the surrogate's own 9000
spectra (rms distance of 200 random 300-site means from the all-atom mean).  All
distances are normalised residuals of k²·chi on 0.05–20 Å⁻¹; first-shell CN, R and σ²
come from the same ``mlxas.baseline.fit_chi`` fit of each average.

    .venv/bin/python benchmarks/bench_surrogate_md.py

Writes benchmarks/results/surrogate_md_au150.json and docs/img/surrogate_md_au150.png.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_result
from _surrogate_common import RESULTS, ROOT, SETS, load_set, structures_of, train_or_load


def _fit(k, chi, path) -> dict:
    from mlxas.baseline import fit_chi

    r = fit_chi(k, chi, path)
    return {"cn": r.cn, "r_A": r.r, "sigma2_A2": r.sigma2, "status": r.status}


def _plot(grid, curves: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from _surrogate_common import _ft

    k = grid.values
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["k-", "r--", "b:", "g-."]
    for (label, chi), st in zip(curves.items(), styles, strict=False):
        a.plot(k, chi * k**2, st, lw=1.1, label=label)
        r, ft = _ft(k, chi * k**2)
        b.plot(r, ft, st, lw=1.1, label=label)
    a.set_xlabel("k (1/Å)")
    a.set_ylabel("k²·chi(k), averaged")
    a.set_xlim(0, 16)
    b.set_xlabel("R (Å)")
    b.set_ylabel("|chi(R)|")
    b.set_xlim(0, 7)
    a.legend(fontsize=8)
    fig.suptitle("Au150 MD at 300 K, Au L3: surrogate average over all atoms vs FEFF8L")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from mlxas.baseline import first_shell_path
    from mlxas.models.train import set_threads
    from mlxas.surrogate.environments import Environments, environments
    from mlxas.surrogate.kinds import GraphNetwork
    from mlxas.surrogate.metrics import normalised_residual
    from mlxas.surrogate.model import TrainSettings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=400)
    a = ap.parse_args(argv)
    set_threads(2)
    data, split = load_set("au")
    grid, k = data.grid, data.grid.values
    kind = GraphNetwork(grid, SETS["au"]["elements"], SETS["au"]["cutoff"])
    settings = TrainSettings(epochs=a.epochs, members=a.members, patience=40, batch_size=16)
    sur = train_or_load("au_graph", kind, data, split, settings)
    frames = list(structures_of("au").values())
    t0 = time.perf_counter()
    env = Environments.concat([environments(f, None, kind.cutoff) for f in frames])
    chi_all = sur.predict(env).spectra
    t_all = time.perf_counter() - t0
    sampled = sur.predict(data.env).spectra
    test = split == 2

    def resid(x, y):
        return float(normalised_residual(x * k**2, y * k**2)[0])

    mean_all, feff_mean = chi_all.mean(0), data.spectra.mean(0)
    sur_sampled, sur_test, feff_test = (
        sampled.mean(0),
        sampled[test].mean(0),
        data.spectra[test].mean(0),
    )
    rng = np.random.default_rng(0)
    noise = [
        resid(chi_all[rng.choice(len(chi_all), len(data), replace=False)].mean(0), mean_all)
        for _ in range(200)
    ]
    path = first_shell_path("Au", "L3")
    fits = {
        name: _fit(k, c, path)
        for name, c in {
            "surrogate_all_atoms": mean_all,
            "feff_sampled": feff_mean,
            "surrogate_sampled": sur_sampled,
            "feff_test_frames": feff_test,
            "surrogate_test_frames": sur_test,
        }.items()
    }
    _plot(
        grid,
        {
            f"surrogate, all {len(env)} atoms": mean_all,
            f"FEFF8L, {len(data)} sampled sites": feff_mean,
            f"surrogate, test-frame sites ({int(test.sum())})": sur_test,
            f"FEFF8L, test-frame sites ({int(test.sum())})": feff_test,
        },
        ROOT / "docs" / "img" / "surrogate_md_au150.png",
    )
    write_result(
        "surrogate_md_au150",
        resid(mean_all, feff_mean),
        "normalised residual: surrogate all-atom mean vs FEFF sampled mean (k²·chi)",
        n_frames=len(frames),
        n_sites_surrogate=len(env),
        n_sites_feff=len(data),
        n_sites_feff_test_frames=int(test.sum()),
        residual_surrogate_vs_feff_same_sites=resid(sur_sampled, feff_mean),
        residual_surrogate_vs_feff_test_frames=resid(sur_test, feff_test),
        sampling_noise_of_feff_mean_median=float(np.median(noise)),
        first_shell_fits=fits,
        surrogate_seconds_all_atoms=t_all,
        feff_seconds_sampled_sum=float(data.sites["seconds"].sum()),
        feff_seconds_all_atoms_estimate=float(data.sites["seconds"].mean() * len(env)),
        model_id=sur.model_id,
        md_config="benchmarks/surrogate/au150_md_small.yaml",
        results=str((RESULTS / "surrogate_au150_md").relative_to(ROOT)),
    )


if __name__ == "__main__":
    main()
