"""The whole loop through `mlops-pack run` and `mlops-pack ingest`, on two pipelines a newcomer writes for
scikit-learn's bundled datasets served by a local site: wine (3 classes, retrain on drift only) and
breast cancer (binary, stratified holdout, retrain on new data and on drift), in one Airflow.

Day 1 gives each its first champion; day 2 is shifted (every feature x1.6): wine's new data does not
retrain (policy), its drift does, on the newest partitions; breast cancer retrains on the new data,
and the drift event that follows, about data already trained on, does not retrain again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cli.dataset_site import Site, serve, spec_yaml
from tests.support.waiting import DEADLINE, wait_until

pytestmark = pytest.mark.e2e

DAY1, DAY2 = "2026-11-01", "2026-11-02"


def command() -> list[str]:
    script = Path(sys.executable).parent / "mlops-pack"
    return [str(script)] if script.exists() else [shutil.which("mlops-pack") or "mlops-pack"]


class Output:
    """Lines a background process prints, collected by a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match:
        def matched() -> re.Match | None:
            return next((m for line in list(self.lines) if (m := re.search(pattern, line))), None)

        def running() -> None:
            if self.proc.poll() is not None:
                time.sleep(1)  # the reader thread takes the last lines
                if not matched():
                    raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-80:]))

        return wait_until(matched, f"a line matching {pattern!r}", poll=1, check=running)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    from mlops_pack.cli import runner

    base = tmp_path_factory.mktemp("mlops-pack-run")
    site = Site({"wine": None, "breast_cancer": 10})
    for name in site.features:
        site.set_day(name, 1)
    server = serve(site)
    host = f"127.0.0.1:{server.server_address[1]}"
    pipelines, home = base / "pipelines", base / "home"
    pipelines.mkdir()
    started = time.monotonic()  # from here: a newcomer's new YAML files to their first champions
    (pipelines / "wine.yaml").write_text(spec_yaml(
        "wine", site.days["wine"].features, host, retrain="[drift]",
        metrics="    roc_auc: {min_delta: 0.0}\n    log_loss: {max: 1.0}\n    f1: {min: 0.6}"))
    (pipelines / "breast_cancer.yaml").write_text(spec_yaml(
        "breast_cancer", site.days["breast_cancer"].features, host, retrain="[new_data, drift]", stratify=True,
        metrics="    roc_auc: {min_delta: 0.0}\n    accuracy: {min: 0.8}"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen([*command(), "run", str(pipelines), "--home", str(home), "--serve", "--timeout", f"{DEADLINE:.0f}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=base)
    out = Output(run)
    try:
        out.wait_for(r"serving http://")
        firsts = {m[1]: int(m[2]) for line in out.lines if (m := re.search(r"\] (\w+): first champion v1 after (\d+)s",
                                                                              line))}
        firsts["fixture_s"] = round(time.monotonic() - started)
        for name in site.features:
            site.set_day(name, 2, shift=True)
        ingest = subprocess.run([*command(), "ingest", "wine", "breast_cancer", "--home", str(home), "--timeout", f"{DEADLINE:.0f}"],
                                capture_output=True, text=True, env=env, cwd=base)
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        state = runner.load_runner_state(home)
        airflow = runner.Airflow(home, state["api_port"], state["pipelines"])
        airflow.wait_ready(timeout=DEADLINE)
        summaries = {name: runner.collect_summary(airflow, home, name) for name in state["pipelines"]}
        timing = {"first_champion_s": firsts, "total_s": round(time.monotonic() - started)}
        (base / "timing.json").write_text(json.dumps(timing))
        print(f"\n[mlops-pack e2e] {timing}")
        yield {"summaries": summaries, "run_output": out.lines, "ingest_output": ingest.stdout, "home": home,
               "timing": timing}
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                run.kill()
        server.shutdown()


def train_runs(summary: dict) -> list[dict]:
    return [r for r in summary["runs"] if r["dag_id"].endswith("__train")]


def test_run_gives_each_new_pipeline_a_first_champion(loop):
    for name in ("wine", "breast_cancer"):
        assert name in loop["timing"]["first_champion_s"], loop["run_output"][-40:]
        history = loop["summaries"][name]["champion_history"]
        assert history[0]["version"] == "1" and history[0]["decision"] == "promoted", history
        assert history[0]["reason"].startswith("first model")
    assert any("Airflow is up after" in line for line in loop["run_output"])


def test_run_prints_the_login_once_and_the_plugin_refuses_callers_without_one(loop):
    import httpx
    from mlops_pack.cli import runner

    user, password = runner.acting_credentials(loop["home"])
    said = "\n".join(loop["run_output"])
    assert f"as one of: {user}:admin" in said and f"new password of {user}: {password}" in said
    assert password not in loop["ingest_output"]  # shown the time it was made, not again
    for log in (loop["home"] / "logs").rglob("*.log"):  # nor in any task log
        assert password not in log.read_text(errors="replace"), log
    url = runner.load_runner_state(loop["home"])["api_url"]
    assert httpx.get(f"{url}/mlops/health/wine", timeout=30).status_code == 401


def test_every_dag_run_succeeded(loop):
    for summary in loop["summaries"].values():
        failed = [r for r in summary["runs"] if r["state"] != "success"]
        assert failed == [], failed


def test_multiclass_model_is_gated_on_probability_metrics(loop):
    versions = loop["summaries"]["wine"]["model_versions"]
    first = versions[0]["metrics"]
    assert {"roc_auc", "log_loss", "f1", "accuracy", "balanced_accuracy"} <= set(first)
    assert first["roc_auc"] > 0.9
    from mlflow import MlflowClient
    from mlops_pack.cli.runner import tracking_uri

    client = MlflowClient(tracking_uri(loop["home"]), registry_uri=tracking_uri(loop["home"]))
    tags = client.get_model_version("wine", "1").tags
    assert {"holdout_precision.class_0", "holdout_recall.class_2"} <= set(tags)
    run = client.get_run(client.get_model_version("wine", "1").run_id)
    assert "holdout_recall.class_1" in run.data.metrics
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "review")}
    assert {"review/confusion_matrix.png", "review/roc.png"} <= figures


def test_wine_new_data_does_not_retrain_but_its_drift_does_on_the_newest_partitions(loop):
    summary = loop["summaries"]["wine"]
    drifted = [m for m in summary["monitor_runs"] if m["drift"]]
    assert drifted and drifted[0]["partition"] == f"{DAY2}__v1", summary["monitor_runs"]
    runs = train_runs(summary)
    skipped_new_data = [r for r in runs if r.get("train_state") == "skipped" and "wine.validated" in
                        r.get("triggered_by", [])]
    assert skipped_new_data, runs  # retrain.triggers: [drift]
    drift_trained = [r for r in runs if "wine.drift" in r.get("triggered_by", []) and r["train_state"] == "success"]
    assert len(drift_trained) == 1, runs
    v2 = next(v for v in summary["model_versions"] if v["version"] == "2")
    assert v2["data_partitions"] == f"{DAY1},{DAY2}"
    assert v2["decision"] == "promoted", v2
    assert summary["aliases"]["champion"] == "2"
    assert len(summary["model_versions"]) == 2  # no retrain on data the champion already learned from


def test_binary_pipeline_retrains_on_new_data_and_never_twice_on_one_window(loop):
    summary = loop["summaries"]["breast_cancer"]
    windows = [v["data_partitions"] for v in summary["model_versions"]]
    assert windows[:2] == [DAY1, f"{DAY1},{DAY2}"], summary["model_versions"]
    # Whether the gate promoted v2 or not, the drift event that follows is about data v2 was trained on:
    # no second challenger from the same window (the champion has it, or the gate rejected it already).
    assert len(windows) == len(set(windows)), summary["model_versions"]
    assert summary["model_versions"][1]["decision"] in ("promoted", "rejected")
    assert 0 <= summary["model_versions"][1]["metrics"]["roc_auc"] <= 1
    for r in train_runs(summary):
        if r.get("triggered_by") == ["breast_cancer.drift"]:
            assert r["train_state"] == "skipped", r
