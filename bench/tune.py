"""Search wall time: the same 16-trial search on one worker vs two, trials sharing one Optuna study.

    python bench/tune.py [--trials 16] [--workers 2] [--rows-per-day 2000] [--days 3]

The demo listings (``--days`` days of ``--rows-per-day``) are split as the train task splits them;
the search is the demo spec's estimator with ``model.search`` method random, seed 0, 3 time-ordered
folds. Each trial runs the code a mapped ``trial`` task runs (core/search.py: folds, cross-validated
score; the result recorded in an Optuna study on SQLite), in a pool of ``--workers`` long-lived
processes that take trials as they free up, as Celery workers take mapped task instances. The pools
are warmed (imports done) before timing: a Celery worker is long-lived too. Each worker process gets
one thread (OMP_NUM_THREADS=1): a Celery worker's trial has its worker's cores, and this machine has
two in all. Prints both wall times, their ratio (design bar: <= 0.6) and whether the best parameters
agree. Not measured here: Airflow's scheduling of the mapped tasks on the Celery stack.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/sklearn load: one core per worker
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO / "include"), str(REPO)]

SEARCH = ("  window_partitions: 5\n  search:\n    method: random\n    max_trials: {trials}\n    seed: 0\n    cv: 3\n"
          "    space:\n      max_iter: {{low: 40, high: 200, integer: true}}\n"
          "      learning_rate: {{low: 0.02, high: 0.3, log: true}}\n      max_leaf_nodes: [15, 31, 63]\n")
STATE: dict = {}


def setup(spec_path: str, train_path: str) -> None:
    """Worker start: the spec, the training rows and the heavy imports, once per process."""
    import pandas as pd
    import sklearn.ensemble  # noqa: F401 - warm
    from mlops_pack.core.spec import load_spec

    STATE["spec"] = load_spec(spec_path)
    STATE["train"] = pd.read_parquet(train_path)


def run_trial(trial: dict, storage: str, study: str) -> dict:
    """What a mapped trial task does with its trial: cross-validate, record it in the shared study."""
    import optuna
    from mlops_pack.core.search import cv_score, distributions, fold_indices, open_study
    from mlops_pack.core.train import build_pipeline, with_params

    spec, frame = STATE["spec"], STATE["train"]
    search, params = spec.model.search, trial["params"]
    folds = fold_indices(frame, spec.model, search.cv, search.seed)
    scores = cv_score(lambda: with_params(build_pipeline(spec.model), params), frame, spec.model, "rmse", folds)
    score = sum(scores) / len(scores)
    space = distributions(dict(search.space))
    open_study(storage, study, direction="lower", seed=0).add_trial(optuna.trial.create_trial(
        params=params, distributions=space, value=score, user_attrs={"slot": trial["slot"]}))
    return {"slot": trial["slot"], "params": params, "score": score, "status": "ok"}


def search(workers: int, trials: list[dict], spec_path: str, train_path: str, storage: str) -> tuple[float, dict]:
    from mlops_pack.core.search import open_study, pick_best

    study = f"bench-{workers}w"
    open_study(storage, study, direction="lower", seed=0, create=True)
    with ProcessPoolExecutor(workers, initializer=setup, initargs=(spec_path, train_path)) as pool:
        list(pool.map(time.sleep, [0.5] * workers))  # every worker started and warm
        started = time.perf_counter()
        results = list(pool.map(run_trial, trials, [storage] * len(trials), [study] * len(trials)))
        wall = time.perf_counter() - started
    return wall, pick_best(results, higher_is_better=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd
    from demo_site.generator import SiteState, day_records
    from mlops_pack.core.search import planned_trials
    from mlops_pack.core.spec import load_spec
    from mlops_pack.core.train import split_window

    from tests.support.specs import write_spec

    folder = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    spec_path = write_spec(folder, "http://127.0.0.1:9", **{"  window_partitions: 5\n": SEARCH.format(
        trials=args.trials)})
    spec = load_spec(spec_path)
    frame = pd.concat([pd.DataFrame(day_records(SiteState(day=d, records_per_day=args.rows_per_day)))
                       for d in range(1, args.days + 1)], ignore_index=True)
    train, _holdout = split_window(frame, spec.model, spec.source.key)
    train_path = folder / "train.parquet"
    train.to_parquet(train_path)
    trials = planned_trials(spec.model.search)
    storage = f"sqlite:///{folder / 'search.db'}"
    print(f"{len(trials)} trials, 3 time-ordered folds on {len(train)} training rows (of {len(frame)}); "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    one, best_one = search(1, trials, str(spec_path), str(train_path), storage)
    print(f"1 worker : {one:7.2f} s  best trial {best_one['slot']} {best_one['params']} rmse {best_one['score']:.1f}")
    many, best_many = search(args.workers, trials, str(spec_path), str(train_path), storage)
    print(f"{args.workers} workers: {many:7.2f} s  best trial {best_many['slot']} {best_many['params']} "
          f"rmse {best_many['score']:.1f}")
    same = best_one["params"] == best_many["params"]
    print(f"ratio {args.workers} workers / 1 worker: {many / one:.2f} (bar <= 0.6); same best params: {same}")


if __name__ == "__main__":
    main()
