"""Search wall time: the same 16-trial search on one worker vs two.

    python bench/tune.py [--trials 16] [--rows 2000] [--port-base 32000] [--db-prefix h23_tune] [--redis-db 2]
    python bench/tune.py --pool [--trials 16] [--workers 2] [--rows-per-day 2000] [--days 3]

Default: on the native CeleryExecutor stack (deploy/stack.py, docs/deploy.md) with each Celery worker
taking one task at a time (``worker_concurrency`` 1). The demo spec gets ``model.search`` (method
random, seed 0, 3 time-ordered folds, ``parallelism`` 2); a first market day is ingested and the
train run its new data triggers runs the search on both workers. Then worker-2 is stopped, the
search's Optuna study deleted from the stack's PostgreSQL search database (so no trial is reused) and
the train DAG triggered by hand: the same search on the same rows on one worker. The search's wall time is
the first mapped ``trial`` task's start to the last one's end (Airflow's task instance times: queueing,
process start, reading the training set, cross-validation, recording in the study and MLflow). Prints
both, the ratio (design bar: <= 0.6), each run's best params (from the study) and whether they agree.
The machine's load average is printed beside them: on a shared machine the ratio is noisy.

``--pool``: no Airflow; each trial runs the code a mapped ``trial`` task runs (core/search.py: folds,
cross-validated score; the result recorded in an Optuna study on SQLite) in a pool of ``--workers``
long-lived, warmed processes with one thread each (OMP_NUM_THREADS=1).
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
          "    parallelism: 2\n"
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
    parser.add_argument("--pool", action="store_true", help="processes as workers, no Airflow")
    parser.add_argument("--workers", type=int, default=2, help="--pool only")
    parser.add_argument("--rows-per-day", type=int, default=2000)
    parser.add_argument("--days", type=int, default=3, help="--pool only (the stack ingests one day)")
    parser.add_argument("--port-base", type=int, default=32000)
    parser.add_argument("--db-prefix", default="h23_tune")
    parser.add_argument("--redis-db", type=int, default=2)
    args = parser.parse_args()
    if not args.pool:
        run_on_stack(args, SEARCH.format(trials=args.trials))
        return

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


def run_on_stack(args: argparse.Namespace, search_yaml: str) -> None:
    """The search through the train DAG's mapped trials on the native Celery stack: 1 worker, then 2."""
    import secrets
    import signal

    import httpx

    sys.path.insert(0, str(REPO / "deploy"))
    import stack

    base = args.port_base
    home = Path(tempfile.mkdtemp(prefix="bench-tune-stack-"))
    endpoints = stack.Endpoints(s3=f"127.0.0.1:{base + 1}", mlflow=f"127.0.0.1:{base + 2}",
                                api=f"127.0.0.1:{base + 3}", site=f"127.0.0.1:{base + 4}", redis_db=args.redis_db)
    cfg = stack.StackConfig(home=home, endpoints=endpoints, db_prefix=args.db_prefix,
                            bucket=args.db_prefix.replace("_", "-"), jwt_secret=secrets.token_hex(24),
                            admin_password=secrets.token_urlsafe(12), records=args.rows_per_day)
    stack.TUNING["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "1"  # a worker runs one trial at a time
    demo_spec = stack.spec_text
    stack.spec_text = lambda site: _with_search(demo_spec(site), search_yaml)
    native = stack.Stack(cfg)
    train = f"{stack.PIPELINE}__train"
    try:
        started = time.perf_counter()
        native.up()
        client = stack.Client(cfg)
        client.http.timeout = httpx.Timeout(300)  # an api-server at load 25 answers slowly
        client.wait_ready(1800, check=native.check)
        print(f"stack up in {time.perf_counter() - started:.0f} s (home {home}); load {_load()}", flush=True)
        site = httpx.Client(base_url=f"http://{endpoints.site}", timeout=30)
        site.post("/admin/state", json={"day": 1, "shift": False}).raise_for_status()
        client.trigger(f"{stack.PIPELINE}__ingest")
        _wait_quiet(client)  # ingest, then the train run its new data triggers: the search on both workers
        first = [r for r in client.runs(train) if r["state"] == "success"]
        if not first:
            raise RuntimeError(f"the first train run did not succeed: {client.runs(train)}; logs in {home}/logs")
        two = _measured(client, cfg, train, first[-1]["dag_run_id"], "2 workers")
        os.killpg(native.pids["airflow-worker-training"], signal.SIGTERM)  # one worker left: worker-1
        while stack._alive(native.pids["airflow-worker-training"]):
            time.sleep(0.5)
        _delete_studies(cfg)  # the same search on the same rows again: no trial reused
        one = _measured(client, cfg, train, client.trigger(train), "1 worker ")
        print(f"ratio 2 workers / 1 worker: {two['wall'] / one['wall']:.2f} (bar <= 0.6); same best params: "
              f"{one['best'] == two['best']}; load {_load()}")
    finally:
        native.down()
        print(f"stack stopped; logs in {home / 'logs'}")


def _with_search(text: str, search_yaml: str) -> str:
    old = "  window_partitions: 5\n"
    if old not in text:
        raise ValueError(f"{old!r} not in the demo spec")
    return text.replace(old, search_yaml)


def _wait_quiet(client, timeout: float = 3600) -> None:
    """stack.Client.wait_quiet, riding out the api-server's slow answers on a loaded machine."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.wait_quiet(max(60.0, deadline - time.monotonic()), settle=10)
        except httpx.TransportError as exc:
            if time.monotonic() > deadline:
                raise
            print(f"(api-server slow: {type(exc).__name__}; asking again)", flush=True)
            time.sleep(5)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _span(client, dag_id: str, run_id: str) -> dict:
    """Wall time of the run's mapped trials (first start to last end), their sum, hosts and run state."""
    import datetime as dt

    tis = [t for t in client.task_instances(dag_id, run_id) if t["task_id"] == "trial"]
    starts = [dt.datetime.fromisoformat(t["start_date"]) for t in tis if t["start_date"]]
    ends = [dt.datetime.fromisoformat(t["end_date"]) for t in tis if t["end_date"]]
    return {"trials": len(tis), "states": sorted({t["state"] for t in tis}),
            "hosts": sorted({t["hostname"] for t in tis if t["hostname"]}),
            "wall": (max(ends) - min(starts)).total_seconds() if starts and ends else float("nan"),
            "task_sum": sum(t["duration"] or 0 for t in tis)}


def _delete_studies(cfg) -> None:
    import optuna

    storage = cfg.pg_url(cfg.search_db)
    for name in optuna.get_all_study_names(storage):
        optuna.delete_study(study_name=name, storage=storage)


def _measured(client, cfg, dag_id: str, run_id: str, label: str) -> dict:
    """Once the pipeline is quiet: the train run's trials' span and the best params of its study."""
    import optuna

    _wait_quiet(client)
    state = next(r["state"] for r in client.runs(dag_id) if r["dag_run_id"] == run_id)
    span = _span(client, dag_id, run_id)
    storage = cfg.pg_url(cfg.search_db)
    [name] = optuna.get_all_study_names(storage)
    best = optuna.load_study(study_name=name, storage=storage).best_trial
    span.update(best={k: best.params[k] for k in sorted(best.params)}, best_score=best.value)
    print(f"{label}: {span['wall']:7.1f} s for {span['trials']} trials ({span['states']}, on {span['hosts']}, "
          f"task time sum {span['task_sum']:.0f} s; run {run_id} {state}); best {span['best']} "
          f"rmse {best.value:.1f}; load {_load()}", flush=True)
    return span

if __name__ == "__main__":
    main()
