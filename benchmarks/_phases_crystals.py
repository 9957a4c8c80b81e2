"""Make the random P-1 crystals of the phase experiments (chunked extxyz, resumable).

    .venv/bin/python benchmarks/_phases_crystals.py OUT_DIR --seed 0 --n 10000 --chunk 500

Chunk ``i`` holds crystals ``i*chunk .. (i+1)*chunk - 1`` of the seed; a chunk already
written is skipped, so a killed run resumes.  Crystals that could not be made are listed
in ``rejected_<chunk>.csv``; ``rate_<chunk>.json`` holds the CPU seconds per crystal.
"""

from __future__ import annotations

# isort: off
import mlxas  # noqa: F401  (first: loads cctbx's C++ runtime before scipy)

# isort: on
import argparse
import json
import time
from pathlib import Path

from ase.io import write

from mlxas.phases.crystals import CrystalError, CrystalSettings, random_crystals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--space-group", type=int, default=2)
    ap.add_argument("--max-edge", type=float, default=11.0)
    ap.add_argument("--max-heavy-atoms", type=int, default=20)
    ap.add_argument(
        "--reverse", action="store_true", help="last chunk first (a second process meets the first)"
    )
    args = ap.parse_args()
    settings = CrystalSettings(
        space_group=args.space_group,
        seed=args.seed,
        max_edge=args.max_edge,
        max_heavy_atoms=args.max_heavy_atoms,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, args.n, args.chunk))
    for start in reversed(starts) if args.reverse else starts:
        stem = f"s{args.seed}_{start // args.chunk:05d}"
        path = args.out / f"{stem}.extxyz"
        running = args.out / f"{stem}.running"
        if path.exists() or running.exists():
            continue
        running.touch()
        t0, c0 = time.perf_counter(), time.process_time()
        good, bad = [], []
        for index, item in random_crystals(settings, min(args.chunk, args.n - start), start):
            if isinstance(item, CrystalError):
                bad.append(f"{index},{item}")
            else:
                good.append(item)
        write(args.out / f"{stem}.tmp.extxyz", good, format="extxyz")
        (args.out / f"rejected_{stem}.csv").write_text("index,reason\n" + "\n".join(bad))
        rate = {
            "n": len(good),
            "rejected": len(bad),
            "cpu_s_per_crystal": (time.process_time() - c0) / max(len(good), 1),
            "wall_s": time.perf_counter() - t0,
            "settings": {k: v for k, v in vars(settings).items() if k != "molecules"},
        }
        (args.out / f"rate_{stem}.json").write_text(json.dumps(rate, indent=1))
        (args.out / f"{stem}.tmp.extxyz").rename(path)
        running.unlink()
        print(stem, rate["n"], rate["rejected"], round(rate["cpu_s_per_crystal"], 3), flush=True)


if __name__ == "__main__":
    main()
