"""The private Airflow home of a test process (SQLite, migrated once per process), as environment.

Importing this module activates the home (once per process): pytest imports the conftest files of the
paths it is given (tests/ui/conftest.py for ``pytest tests/ui/x.py``) before any ``pytest_configure``, and
they read ``HOME`` at import, so the home must exist by then. Each pytest process (each xdist worker)
gets its own; nothing else in tests/support/ touches the environment.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = Path(tempfile.gettempdir()) / "mlops-test-home-unset"  # replaced by activate()
DAGS = HOME / "dags"  # test pipelines' thin DAG files; tests of the repo's dags/ load that folder directly


def activate() -> Path:
    """Create this process's home and point Airflow, MLflow and the pack at it (once per process)."""
    global HOME, DAGS
    if os.environ.get("MLOPS_TEST_HOME") == str(HOME) and HOME.exists():
        return HOME
    HOME = Path(tempfile.mkdtemp(prefix="mlops-test-home-"))
    DAGS = HOME / "dags"
    DAGS.mkdir()
    os.environ.update({
        "MLOPS_TEST_HOME": str(HOME),
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
        "AIRFLOW__MLOPS__PIPELINES_DIR": str(REPO / "include" / "pipelines"),  # default: $AIRFLOW_HOME/pipelines
        "AIRFLOW__MLOPS__STORAGE_ROOT": f"file://{HOME / 'data'}",
        "AIRFLOW__MLOPS__MLFLOW_TRACKING_URI": f"sqlite:///{HOME / 'mlflow.db'}",
        "AIRFLOW__MLOPS__MLFLOW_ARTIFACT_ROOT": f"file://{HOME / 'mlartifacts'}",
        "AIRFLOW__MLOPS__ALLOWED_MODEL_MODULES": "tests.user_code",  # the test model code, as a user configures theirs
        "GIT_PYTHON_REFRESH": "quiet",
    })
    # Every Airflow home of the run (xdist workers inherit this from the controller) starts from one
    # migrated metadata DB per Airflow version, and one MLflow store per MLflow version: mlops_pack.cli.runner
    # (migrate_db, init_mlflow).
    os.environ.setdefault("MLOPS_AIRFLOW_DB_CACHE", str(Path(tempfile.gettempdir()) / "mlops-test-airflow-db"))
    for path in (REPO / "plugins", REPO / "include"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    return HOME


activate()
