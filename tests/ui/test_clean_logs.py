"""Clean task logs: skops' module lookup no longer floods a train task's log with Airflow deprecations (every
task log of the demo loop is checked in tests/e2e/test_retrain_loop.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.waiting import DEADLINE

SCRIPT = """
import logging, warnings
logging.captureWarnings(True)  # as in a task: warnings become log lines
import airflow.sdk, airflow.models, airflow.utils.timezone  # airflow's deprecated lazy modules are loaded
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from mlops_pack.core.train import trusted_types
model = make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_iter=3))
model.fit(np.random.rand(40, 3), np.random.rand(40))
types = trusted_types(model)
import skops.io as sio
sio.dumps(model)  # what MLflow's log_model does next
print("TYPES", len(types))
"""


def test_trusted_types_and_the_model_dump_log_no_deprecation_warning():
    plugins = Path(__file__).resolve().parents[2] / "plugins"
    out = subprocess.run([sys.executable, "-W", "default", "-c", SCRIPT], capture_output=True, text=True,
                         timeout=DEADLINE, env={"PYTHONPATH": str(plugins), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TYPES" in out.stdout
    flood = [line for line in (out.stdout + out.stderr).splitlines() if "deprecated" in line.lower()]
    assert flood == [], f"{len(flood)} deprecation lines, e.g. {flood[:3]}"


FAILING_DAG = """# airflow dag file
import datetime as dt
from airflow.sdk import DAG, task
from mlops_pack.notifications import PipelineAlertNotifier

with DAG("failing__probe", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
         default_args={{"retries": 0, "on_failure_callback": [PipelineAlertNotifier(spec_path={spec!r})]}}) as dag:

    @task
    def train():
        raise ValueError("training set 2026-11-09 has no 'price' column")

    train()
"""


def test_a_failing_task_log_ends_with_its_error(airflow_db, tmp_path):
    """What follows a task's error (Airflow's post-execute lines, the pack's failure alert, here with both
    channels down and logging why) leaves the error within the task log's last 20 lines."""
    import json
    import os
    import subprocess
    import sys

    from tests.support.env import DAGS
    from tests.support.ports import free_port
    from tests.support.specs import write_spec

    os.environ["AIRFLOW_CONN_DOWN_SMTP"] = json.dumps({"conn_type": "smtp", "host": "127.0.0.1",
                                                       "port": free_port(), "extra": {"timeout": 2}})
    os.environ["AIRFLOW_CONN_DOWN_HOOK"] = json.dumps({"conn_type": "http",
                                                       "host": f"http://127.0.0.1:{free_port()}/hook"})
    spec = write_spec(tmp_path, "http://127.0.0.1:9", name="failing")
    spec.write_text(spec.read_text() + "\nalerts:\n  smtp_conn_id: down_smtp\n  recipients: [ops@example.test]\n"
                    "  webhook_conn_id: down_hook\n")
    path = DAGS / "failing_probe.py"
    path.write_text(FAILING_DAG.format(spec=str(spec)))
    # dag.test() in a process of its own: what it prints is then all of the task's output, whichever
    # logging set-up earlier tests in this session left behind (they can point Airflow's log handlers
    # at a stream no capture fixture sees).
    code = f"import runpy; run = runpy.run_path({str(path)!r})['dag'].test(); print('RUN STATE', run.state)"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE,
                             env=os.environ)
    finally:
        path.unlink()
    lines = (out.stdout + out.stderr).splitlines()
    assert "RUN STATE failed" in lines, "\n".join(lines[-40:])
    start = next(i for i, line in enumerate(lines) if "[DAG TEST] running task" in line and ".train " in line)
    end = next(i for i, line in enumerate(lines) if "[DAG TEST] end task" in line and "task_id=train" in line)
    task_log = lines[start + 1:end]
    assert any("ALERT not delivered" in line for line in task_log)  # the alert ran, and logged, after the error
    tail = "\n".join(task_log[-20:])
    assert "ValueError: training set 2026-11-09 has no 'price' column" in tail, "\n".join(task_log[-40:])
