"""Pack settings, read from the ``[mlops]`` Airflow config section (so also ``AIRFLOW__MLOPS__*``)."""

from __future__ import annotations

import os
from pathlib import Path


def _conf(key: str, fallback: str) -> str:
    from airflow.sdk import conf

    return conf.get("mlops", key, fallback=fallback)


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))


def pipelines_dir() -> Path:
    """Folder holding the pipeline specs (``[mlops] pipelines_dir``, default ``$AIRFLOW_HOME/pipelines``).

    The default depends on Airflow's home only, not on where the package is installed: a wheel in
    site-packages has no checkout around it. This repository's demo and tests point it at
    ``include/pipelines``.
    """
    return Path(_conf("pipelines_dir", str(airflow_home() / "pipelines")))


def allowed_model_modules() -> list[str]:
    """Module prefixes ``model.estimator`` and ``model.pipeline`` may name besides scikit-learn and the
    project's own modules under the spec's folder or its parent (``[mlops] allowed_model_modules``,
    comma-separated, e.g. ``xgboost, lightgbm, acme_models``; default none). Anything else is refused
    when the spec is read: a spec naming ``subprocess.Popen`` would run a command at training time."""
    return [p.strip() for p in _conf("allowed_model_modules", "").split(",") if p.strip()]


def storage_root() -> str:
    """Object storage URL under which each pipeline keeps its partitions, reports and logs."""
    return _conf("storage_root", f"file://{airflow_home() / 'mlops-data'}")


def storage_conn_id() -> str | None:
    return _conf("storage_conn_id", "") or None


def training_queue() -> str:
    """Executor queue of the train task (``[mlops] training_queue``): with CeleryExecutor, the queue
    only the workers sized for training listen on; default ``[operators] default_queue``."""
    from airflow.sdk import conf

    return _conf("training_queue", "") or conf.get("operators", "default_queue", fallback="default")


def default_tracking_uri() -> str:
    """MLflow tracking URI used when no ``mlflow_default`` connection exists: SQLite beside Airflow."""
    return _conf("mlflow_tracking_uri", f"sqlite:///{airflow_home() / 'mlflow.db'}")


def search_storage() -> str:
    """SQLAlchemy URL of the store holding search studies, which every worker running trials must reach:
    the Airflow connection ``[mlops] search_conn_id`` (a PostgreSQL database in production; its password
    stays in the connection), else ``[mlops] search_storage``, else SQLite beside Airflow (one machine)."""
    conn_id = _conf("search_conn_id", "")
    if conn_id:
        from airflow.sdk import BaseHook

        uri = BaseHook.get_connection(conn_id).get_uri()
        scheme, sep, rest = uri.partition("://")
        # Airflow names the scheme postgres://, which SQLAlchemy 2 no longer accepts.
        return f"postgresql+psycopg2://{rest}" if scheme in ("postgres", "postgresql") else uri
    return _conf("search_storage", f"sqlite:///{airflow_home() / 'search.db'}")


def default_artifact_root() -> str:
    return _conf("mlflow_artifact_root", f"file://{airflow_home() / 'mlartifacts'}")


def task_timeout_minutes() -> float:
    """Default ``execution_timeout`` of every loop task (``[mlops] task_timeout_minutes``, 120).

    A backstop, not a schedule: a task that hangs (a site that never ends, a stuck service) fails
    instead of holding its worker slot forever. The crawl's own deadline (``source.max_crawl_seconds``,
    30 min by default) is shorter, so a slow crawl ends with its reasons written.
    """
    value = _conf("task_timeout_minutes", "120")
    try:
        minutes = float(value)
    except ValueError:
        raise ValueError(f"[mlops] task_timeout_minutes must be a number of minutes, got {value!r}") from None
    if not minutes > 0:
        raise ValueError(f"[mlops] task_timeout_minutes must be > 0, got {value!r}")
    return minutes


def mlflow_ui_url() -> str:
    """Browser URL of the MLflow UI the extra links open (``[mlops] mlflow_ui_url``); empty: derive it."""
    return _conf("mlflow_ui_url", "").rstrip("/")


def ui_base_url() -> str:
    """Browser URL of the Airflow api-server (``[mlops] ui_base_url``, else ``[api] base_url``).

    Links to reports, Data Docs and quarantined files point at the pack's plugin app under it.
    """
    from airflow.sdk import conf

    url = _conf("ui_base_url", "") or conf.get("api", "base_url", fallback="") or ""
    if not url:
        port = conf.get("api", "port", fallback="8080") or "8080"
        url = f"http://localhost:{port}"
    return url.rstrip("/")


def ui_base_path() -> str:
    """The path part of :func:`ui_base_url` ("" at a host's root, "/airflow" behind a prefix): links shown
    in the Airflow UI are same-origin paths under it, so they survive a new host or port."""
    from urllib.parse import urlsplit

    return urlsplit(ui_base_url()).path.rstrip("/")


UI_PREFIX = "/mlops"  # where the plugin's FastAPI app is mounted on the api-server


def local_mode() -> bool:
    """``[mlops] local_mode`` (default False): the plugin's pages serve callers without an Airflow login, from
    this machine only (core/access.py). What ``mlops-pack run/ui --no-login`` and ``make demo NO_LOGIN=1``
    set, beside Airflow's ``[core] simple_auth_manager_all_admins``; never on a shared Airflow."""
    value = _conf("local_mode", "False").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off", ""):
        raise ValueError(f"[mlops] local_mode must be True or False, got {value!r}")
    return value in ("true", "1", "yes", "on")


def login_disabled() -> bool:
    """Does this Airflow run without logins (the simple auth manager's ``simple_auth_manager_all_admins``)?
    Then every caller is Airflow's anonymous admin, whatever token it sends."""
    from airflow.sdk import conf

    manager = conf.get("core", "auth_manager", fallback="") or ""
    return manager.endswith(".SimpleAuthManager") and conf.getboolean(
        "core", "simple_auth_manager_all_admins", fallback=False)
