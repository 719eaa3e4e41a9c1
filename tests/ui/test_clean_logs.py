"""Clean task logs: skops' module lookup no longer floods a train task's log with Airflow deprecations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
                         timeout=300, env={"PYTHONPATH": str(plugins), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TYPES" in out.stdout
    flood = [line for line in (out.stdout + out.stderr).splitlines() if "deprecated" in line.lower()]
    assert flood == [], f"{len(flood)} deprecation lines, e.g. {flood[:3]}"
