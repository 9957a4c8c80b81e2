"""forest_infer: rows per second through a saved random forest (numpy inference).

A ``random_forest`` model is stored as plain arrays and evaluated by
:class:`mlxas.models.forest.ForestModel` in numpy (no pickle, no scikit-learn at
prediction time).  This times that walk against scikit-learn's own ``predict_proba`` on
the same fitted forest, in one run, and checks that both give the same probabilities.
Inputs are random (the speed depends on the trees' depth, not on what the input means):
a three-class problem on ``--features`` inputs, ``--trees`` fully grown trees.

    .venv/bin/python benchmarks/bench_forest_infer.py [--n 5000] [--trees 200] \
        [--features 500] [--repeats 5]

Value: numpy rows/s (median of the repeats); extras: scikit-learn's rows/s and the
ratio numpy / scikit-learn.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def _median_rate(fn, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="rows predicted per pass")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--features", type=int, default=500)
    ap.add_argument("--train", type=int, default=3000, help="training rows")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()

    from sklearn.ensemble import RandomForestClassifier

    from mlxas.models.forest import ForestModel, export_forest

    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.train, a.features)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) > 0).astype(int) + (x[:, 5] > 0.5)
    clf = RandomForestClassifier(n_estimators=a.trees, random_state=0, n_jobs=1).fit(x, y)
    forest = ForestModel(["c"], {"c": export_forest(clf, 3, clf.classes_)}, slice(0, a.features))
    xt = rng.normal(size=(a.n, a.features)).astype(np.float32)
    same = bool(np.array_equal(forest.predict_on_batch(xt), clf.predict_proba(xt)))
    ours = _median_rate(lambda: forest.predict_on_batch(xt), a.n, a.repeats)
    theirs = _median_rate(lambda: clf.predict_proba(xt), a.n, a.repeats)
    write_result(
        "forest_infer",
        ours,
        "rows/s",
        sklearn_rows_per_s=theirs,
        ratio_numpy_to_sklearn=ours / theirs,
        equal_to_sklearn=same,
        trees=a.trees,
        features=a.features,
        max_depth=int(max(e.tree_.max_depth for e in clf.estimators_)),
        n=a.n,
        repeats=a.repeats,
    )


if __name__ == "__main__":
    main()
