"""Run the closed retrain loop on the embedded default and print what happened.

    python include/demo_site/loop.py --home demo_home

Starts the demo site and real Airflow processes (api-server, scheduler, dag-processor; LocalExecutor
on SQLite), then drives three market days through the REST API exactly as an upstream system would:
two normal days (first champion, scoring, a drift report with no drift) and a shifted day whose
drift event retrains the model through the scheduler, on the newest partitions (the demo's retrain
policy is ``retrain.triggers: [drift]``: new data alone is scored and monitored, not retrained on).
The Airflow home it leaves behind opens in the web UI with ``make ui`` or ``mlops-pack ui --home
demo_home`` (Airflow and MLflow UIs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "include"))
sys.path.insert(0, str(REPO / "plugins"))

from mlops_pack.cli import runner  # noqa: E402 - the Airflow home machinery `mlops-pack run` uses too
from mlops_pack.cli.runner import Airflow  # noqa: E402

from demo_site.generator import SiteState  # noqa: E402
from demo_site.server import serve  # noqa: E402

PIPELINE = "listings"
DAGS = runner.dag_ids([PIPELINE])


def set_site(site, **changes) -> None:
    import dataclasses

    site.set_state(dataclasses.replace(site.state, **changes))


def prepare(home: Path, site_port: int, api_port: int, spec_edits: dict[str, str] | None = None,
            paused: bool = False, ports: runner.Ports | None = None, users: list[str] | None = None,
            local_mode: bool = False) -> Airflow:
    """Write the Airflow home (config, spec copy pointed at the site), migrate it; returns its processes' handle.
    ``ports`` hands out the home's other ports (its log servers'; free ones by default). Login as
    ``mlops-pack run`` has it (``users`` NAME:ROLE, else you as admin; ``local_mode``: none)."""
    spec_dir = home / "pipelines"
    spec_dir.mkdir(parents=True, exist_ok=True)
    # The demo moves the site's days itself, so its copy of the spec has no nightly cron.
    spec_text = (REPO / "include" / "pipelines" / f"{PIPELINE}.yaml").read_text()
    edits = {"127.0.0.1:8765": f"127.0.0.1:{site_port}", "../suites/": f"{REPO / 'include' / 'suites'}/",
             'ingest: "0 2 * * *"': "ingest: null", **(spec_edits or {})}
    for old, new in edits.items():
        if old not in spec_text:
            raise ValueError(f"spec edit {old!r} matches nothing in {PIPELINE}.yaml")
        spec_text = spec_text.replace(old, new)
    spec = spec_dir / f"{PIPELINE}.yaml"
    spec.write_text(spec_text)
    # Only this pipeline's DAGs: the home's own dags/ folder, one thin file for the copied spec.
    login = runner.write_config(home, api_port, spec_dir, dags_folder=runner.write_dag_files(home, {PIPELINE: spec}),
                                paused=paused, ports=ports, users=users, local_mode=local_mode)
    airflow = Airflow(home, api_port, [PIPELINE])
    airflow.home_login = login
    print(f"[demo] Airflow home {home}; migrating the metadata DB ...", flush=True)
    mlflow_init = runner.init_mlflow(home, wait=False)  # both stores at once: each takes a while
    airflow.migrate()
    runner.finish_init(mlflow_init)
    # `mlops-pack ui --home demo_home` opens this home too.
    runner.save_runner_state(home, api_port=api_port, api_url=airflow.url, pipelines=[PIPELINE],
                             specs={PIPELINE: str(spec)}, pipelines_dir=str(spec_dir))
    return airflow


def run_loop(home: Path, records: int, site_port: int, api_port: int, timeout: float,
             ports: runner.Ports | None = None, spec_edits: dict[str, str] | None = None,
             users: list[str] | None = None, local_mode: bool = False) -> dict:
    """The three market days; ``spec_edits`` (textual, as in :func:`prepare`) on top of the demo's own."""
    started = time.monotonic()
    # The demo's retrain policy: drift retrains (on the newest data, the shifted day); new data alone is
    # scored and monitored, so the drift retrain never re-trains the window new data already trained on.
    airflow = prepare(home, site_port, api_port, spec_edits={
        "\npromotion:\n": "\nretrain:\n  triggers: [drift]\npromotion:\n", **(spec_edits or {})}, ports=ports,
        users=users, local_mode=local_mode)
    server, site = serve(site_port, SiteState(day=1, records_per_day=records))
    airflow.start()
    try:
        airflow.wait_ready(timeout)
        print(f"[demo] Airflow is up after {time.monotonic() - started:.0f}s", flush=True)
        for line in airflow.home_login.describe(airflow.url):
            print(f"[demo] {line}", flush=True)
        for day, shift, what in ((1, False, "day 1: first data, first champion"),
                                 (2, False, "day 2: new data scored, drift report expected clean"),
                                 (3, True, "day 3: the market shifts; drift should retrain the model")):
            set_site(site, day=day, shift=shift)
            run_id = airflow.trigger(f"{PIPELINE}__ingest")
            print(f"[demo] {what} -> {PIPELINE}__ingest {run_id}", flush=True)
            airflow.wait_quiet(timeout)
        summary = collect_summary(airflow, home)
        summary["logins"] = [str(u) for u in airflow.home_login.users]
    finally:
        airflow.stop()
        server.shutdown()
    summary["wall_time_s"] = round(time.monotonic() - started, 1)
    (home / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def collect_summary(airflow: Airflow, home: Path) -> dict:
    return runner.collect_summary(airflow, home, PIPELINE)


def print_summary(summary: dict) -> None:
    runner.print_summary(summary)
    print(f"\n[demo] finished in {summary['wall_time_s']}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / "demo_home")
    parser.add_argument("--records", type=int, default=2000, help="listings per demo day")
    parser.add_argument("--site-port", type=int, help="the demo site's port (default 8765, or from --port-range)")
    parser.add_argument("--api-port", type=int, help="Airflow api-server port (default AIRFLOW__API__PORT, 28080, "
                        "or from --port-range)")
    parser.add_argument("--port-range", help="START-END: every server of the demo (site, api-server, log servers) "
                        "listens on 127.0.0.1 on a free port of this range")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds Airflow's start and each day's cascade may take before the demo gives up "
                             "(a loaded machine is slow, not broken: only a hang should reach it)")
    parser.add_argument("--user", action="append", metavar="NAME:ROLE",
                        help="a user of the demo's Airflow (role viewer, user, op or admin); repeat for more. "
                             "Default: you (your OS login name) as admin; `make ui` keeps them")
    parser.add_argument("--no-login", action="store_true",
                        help="local mode: no login, decisions are recorded as 'Anonymous'")
    args = parser.parse_args()
    home = args.home.resolve()
    if home.exists():
        shutil.rmtree(home)
    ports = runner.Ports(runner.parse_port_range(args.port_range))
    fixed = ports.span is None  # without a range: the ports the demo's docs name
    api_port = runner.api_port(ports, args.api_port or (28080 if fixed and not os.environ.get("AIRFLOW__API__PORT")
                                                        else None))
    site_port = ports.take("the demo site", args.site_port or (8765 if fixed else None))
    summary = run_loop(home, args.records, site_port, api_port, args.timeout, ports, users=args.user,
                       local_mode=args.no_login)
    print_summary(summary)
    if not args.no_login:
        print(f"[demo] `make ui` opens it; log in as {', '.join(summary['logins'])} (passwords: "
              f"{home / runner.PASSWORDS_FILE})")
    retrained = [r for r in summary["runs"] if r["dag_id"] == f"{PIPELINE}__train"
                 and f"{PIPELINE}.drift" in r.get("triggered_by", []) and r.get("train_state") == "success"]
    if not retrained:
        sys.exit("[demo] FAILED: no drift-triggered retrain happened")


if __name__ == "__main__":
    main()
