"""Run the closed retrain loop on the embedded default and print what happened.

    python include/demo_site/loop.py --home demo_home

Starts the demo site and real Airflow processes (api-server, scheduler, dag-processor; LocalExecutor
on SQLite), then drives three market days through the REST API exactly as an upstream system would:
two normal days (first champion, scoring, a drift report with no drift) and a shifted day whose
drift event retrains the model through the scheduler. The Airflow home it leaves behind opens in
the web UI with ``airflow standalone`` (``make ui``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "include"))
sys.path.insert(0, str(REPO / "plugins"))

from demo_site.generator import SiteState  # noqa: E402
from demo_site.server import serve  # noqa: E402

PIPELINE = "listings"
DAGS = [f"{PIPELINE}__{stage}" for stage in ("ingest", "train", "score", "monitor")]
TERMINAL = {"success", "failed"}


def write_config(home: Path, api_port: int, spec_dir: Path, paused: bool = False) -> None:
    """An airflow.cfg for the embedded default; Airflow fills in every other default."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "airflow.cfg"
    jwt = secrets.token_hex(16)
    cfg.write_text(f"""[core]
dags_folder = {REPO / 'dags'}
plugins_folder = {REPO / 'plugins'}
load_examples = False
executor = LocalExecutor
parallelism = 4
dags_are_paused_at_creation = {paused}
simple_auth_manager_all_admins = True
execution_api_server_url = http://127.0.0.1:{api_port}/execution/
[database]
sql_alchemy_conn = sqlite:///{home / 'airflow.db'}
[api]
port = {api_port}
host = 127.0.0.1
[api_auth]
jwt_secret = {jwt}
[scheduler]
scheduler_heartbeat_sec = 2
[dag_processor]
refresh_interval = 10
[mlops]
pipelines_dir = {spec_dir}
storage_root = file://{home / 'mlops-data'}
mlflow_tracking_uri = sqlite:///{home / 'mlflow.db'}
mlflow_artifact_root = file://{home / 'mlartifacts'}
""")


class Airflow:
    """The Airflow processes of the demo and a small REST client for them."""

    def __init__(self, home: Path, api_port: int):
        self.home, self.api_port = home, api_port
        # Only airflow.cfg configures these processes: AIRFLOW__* variables of the caller would override it.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        self.env.update(AIRFLOW_HOME=str(home), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        self.procs: list[subprocess.Popen] = []
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True)
        for name, args in (("api-server", ["api-server", "-p", str(self.api_port)]), ("scheduler", ["scheduler"]),
                           ("dag-processor", ["dag-processor"])):
            out = (logs / f"{name}.out").open("w")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "airflow", *args], env=self.env,
                                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                token = self.http.get("/auth/token").json()["access_token"]
                self.http.headers["Authorization"] = f"Bearer {token}"
                found = {d["dag_id"] for d in self.get("/api/v2/dags", dag_id_pattern=PIPELINE)["dags"]}
                if set(DAGS) <= found:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"an Airflow process exited early: {proc.args}; see {self.home / 'logs'}")
            time.sleep(2)
        raise TimeoutError(f"Airflow did not serve the {PIPELINE} DAGs within {timeout}s; see {self.home / 'logs'}")

    def get(self, path: str, **params) -> dict:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        response = self.http.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="run_after", limit=100)["dag_runs"]

    def wait_quiet(self, timeout: float, settle: float = 12) -> None:
        """Wait until no run of the pipeline is queued or running, and none started for ``settle`` s
        (asset-triggered runs appear a scheduler loop after their event)."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            busy = any(r["state"] not in TERMINAL for dag in DAGS for r in self.runs(dag))
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(2)
        raise TimeoutError(f"the loop was still busy after {timeout}s")


def set_site(site, **changes) -> None:
    import dataclasses

    site.set_state(dataclasses.replace(site.state, **changes))


def prepare(home: Path, site_port: int, api_port: int, spec_edits: dict[str, str] | None = None,
            paused: bool = False) -> Airflow:
    """Write the Airflow home (config, spec copy pointed at the site), migrate it; returns its processes' handle."""
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
    (spec_dir / f"{PIPELINE}.yaml").write_text(spec_text)
    write_config(home, api_port, spec_dir, paused)
    airflow = Airflow(home, api_port)
    print(f"[demo] Airflow home {home}; migrating the metadata DB ...", flush=True)
    airflow.run("db", "migrate")
    airflow.run("pools", "set", "mlops_registry", "1", "MLflow registry writes: one promotion at a time")
    _init_mlflow(home)
    return airflow


def run_loop(home: Path, records: int, site_port: int, api_port: int, timeout: float) -> dict:
    started = time.monotonic()
    airflow = prepare(home, site_port, api_port)
    server, site = serve(site_port, SiteState(day=1, records_per_day=records))
    airflow.start()
    try:
        airflow.wait_ready()
        print(f"[demo] Airflow is up after {time.monotonic() - started:.0f}s", flush=True)
        for day, shift, what in ((1, False, "day 1: first data, first champion"),
                                 (2, False, "day 2: new data scored, drift report expected clean"),
                                 (3, True, "day 3: the market shifts; drift should retrain the model")):
            set_site(site, day=day, shift=shift)
            run_id = airflow.trigger(f"{PIPELINE}__ingest")
            print(f"[demo] {what} -> {PIPELINE}__ingest {run_id}", flush=True)
            airflow.wait_quiet(timeout)
        summary = collect_summary(airflow, home)
    finally:
        airflow.stop()
        server.shutdown()
    summary["wall_time_s"] = round(time.monotonic() - started, 1)
    (home / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _init_mlflow(home: Path) -> None:
    """Create the MLflow SQLite schema once, before tasks race to migrate it."""
    code = (f"import mlflow; mlflow.MlflowClient('sqlite:///{home / 'mlflow.db'}').search_experiments()")
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def collect_summary(airflow: Airflow, home: Path) -> dict:
    from mlflow import MlflowClient

    runs = []
    for dag_id in DAGS:
        for r in airflow.runs(dag_id):
            entry = {"dag_id": dag_id, "run_id": r["dag_run_id"], "run_type": r["run_type"], "state": r["state"]}
            if r["run_type"] == "asset_triggered":
                events = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{r['dag_run_id']}/upstreamAssetEvents")
                entry["triggered_by"] = sorted({e["name"] or e["uri"] for e in events["asset_events"]})
            runs.append(entry)
    data = home / "mlops-data" / PIPELINE
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # explicit: never a registry URI set globally
    versions = sorted(client.search_model_versions(f"name='{PIPELINE}'"), key=lambda v: int(v.version))
    aliases = {a: str(client.get_model_version_by_alias(PIPELINE, a).version)
               for a in ("champion", "previous", "challenger") if _has_alias(client, a)}
    promotions = [json.loads(p.read_text()) for p in sorted((data / "promotions").glob("*.json"))]
    monitors = []  # one drift report per set of prediction partitions (docs/storage.md), oldest data first
    for summary_file in sorted((data / "reports" / "drift").glob("*/summary.json")):
        s = json.loads(summary_file.read_text())
        monitors.append({"partition": s["partition"], "share": s["share"], "drift": s["drift"],
                         "drifted_columns": s["drifted_columns"], "model_version": s["model_version"],
                         "report": s["report_uri"]})
    partitions = {area: sorted(p.parent.name for p in (data / area).glob("*/manifest.json"))
                  for area in ("raw", "validated", "predictions")}
    partitions["training"] = sorted(p.parent.parent.name for p in (data / "training").glob("*/train/manifest.json"))
    return {
        "runs": runs,
        "champion_history": [{"version": p["version"], "decision": p["decision"], "reason": p["reason"],
                              "champion_before": p["champion_before"], "champion_after": p["champion_after"],
                              "run_id": p["run_id"]} for p in promotions],
        "model_versions": [{"version": str(v.version), "decision": v.tags.get("decision"), "reason": v.tags.get("reason")}
                           for v in versions],
        "aliases": aliases,
        "monitor_runs": monitors,
        "partitions": partitions,
        "locations": {"validated": str(data / "validated"), "predictions": str(data / "predictions"),
                      "drift_reports": str(data / "reports" / "drift"), "quarantine": str(data / "quarantine"),
                      "promotion_log": str(data / "promotions"), "mlflow": f"sqlite:///{home / 'mlflow.db'}"},
    }


def _has_alias(client, alias: str) -> bool:
    try:
        client.get_model_version_by_alias(PIPELINE, alias)
        return True
    except Exception:  # noqa: BLE001 - a missing alias is an answer here
        return False


def print_summary(summary: dict) -> None:
    print("\n=== DAG runs ===")
    for r in summary["runs"]:
        by = f"  <- {', '.join(r['triggered_by'])}" if r.get("triggered_by") else ""
        print(f"  {r['dag_id']:<20} {r['run_type']:<16} {r['state']:<8} {r['run_id']}{by}")
    print("\n=== Champion history ===")
    for p in summary["champion_history"]:
        print(f"  v{p['version']:<3} {p['decision']:<9} champion {p['champion_before']} -> {p['champion_after']}: "
              f"{p['reason']}")
    print(f"  aliases now: {summary['aliases']}")
    print("\n=== Drift per report (prediction partition) ===")
    for m in summary["monitor_runs"]:
        print(f"  {m['partition']:<24} share={m['share']:.2f} drift={m['drift']} columns={m['drifted_columns']}")
    print("\n=== Partitions (named by their data) ===")
    for area, keys in summary["partitions"].items():
        print(f"  {area:<12} {', '.join(keys)}")
    print("\n=== Where things are ===")
    for k, v in summary["locations"].items():
        print(f"  {k:<14} {v}")
    print(f"\n[demo] finished in {summary['wall_time_s']}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / "demo_home")
    parser.add_argument("--records", type=int, default=2000, help="listings per demo day")
    parser.add_argument("--site-port", type=int, default=8765)
    parser.add_argument("--api-port", type=int, default=28080)
    parser.add_argument("--timeout", type=float, default=420, help="seconds each day's cascade may take")
    args = parser.parse_args()
    home = args.home.resolve()
    if home.exists():
        shutil.rmtree(home)
    summary = run_loop(home, args.records, args.site_port, args.api_port, args.timeout)
    print_summary(summary)
    retrained = [r for r in summary["runs"] if r["dag_id"] == f"{PIPELINE}__train"
                 and f"{PIPELINE}.drift" in r.get("triggered_by", [])]
    if not retrained:
        sys.exit("[demo] FAILED: no drift-triggered retrain happened")


if __name__ == "__main__":
    main()
