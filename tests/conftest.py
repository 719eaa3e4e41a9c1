"""Test environment: a private Airflow home (SQLite, migrated once), the demo site and specs.

Airflow reads its configuration at import time, so the environment is set before anything imports it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HOME = Path(tempfile.mkdtemp(prefix="mlops-test-home-"))
DAGS = HOME / "dags"  # test pipelines' thin DAG files; tests of the repo's dags/ load that folder directly
DAGS.mkdir()
os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "AIRFLOW__MLOPS__PIPELINES_DIR": str(REPO / "include" / "pipelines"),  # the default is $AIRFLOW_HOME/pipelines
    "AIRFLOW__MLOPS__STORAGE_ROOT": f"file://{HOME / 'data'}",
    "AIRFLOW__MLOPS__MLFLOW_TRACKING_URI": f"sqlite:///{HOME / 'mlflow.db'}",
    "AIRFLOW__MLOPS__MLFLOW_ARTIFACT_ROOT": f"file://{HOME / 'mlartifacts'}",
    "GIT_PYTHON_REFRESH": "quiet",
})
for path in (REPO / "plugins", REPO / "include"):
    sys.path.insert(0, str(path))

from demo_site.generator import SiteState  # noqa: E402
from demo_site.server import serve  # noqa: E402

SERVICES_REQUIRED = os.environ.get("MLOPS_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_up(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a live service is missing, unless CI requires services (then fail)."""
    if not service_up(host, port):
        if SERVICES_REQUIRED:
            pytest.fail(f"{name} at {host}:{port} is required (MLOPS_REQUIRE_SERVICES=1) but not reachable")
        pytest.skip(f"{name} at {host}:{port} is not reachable")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB for dag.test()."""
    for command in (["db", "migrate"], ["pools", "set", "mlops_registry", "1", "registry writes"]):
        subprocess.run([sys.executable, "-m", "airflow", *command], check=True, capture_output=True, env=os.environ)
    return HOME


def write_spec(folder: Path, site_url: str, name: str = "listings", **overrides: str) -> Path:
    """The demo spec pointed at ``site_url``, with textual overrides of its YAML."""
    text = (REPO / "include" / "pipelines" / "listings.yaml").read_text()
    text = text.replace("http://127.0.0.1:8765", site_url).replace("127.0.0.1:8765", site_url.split("//")[1])
    text = text.replace("../suites/", f"{REPO / 'include' / 'suites'}/").replace("name: listings", f"name: {name}")
    for old, new in overrides.items():
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def demo_site():
    """The demo site on a free loopback port with small days; yields (base_url, site)."""
    server, site = serve(0, SiteState(day=1, records_per_day=400, page_size=50))
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()


# --- Running the suite on two workers (pytest-xdist, `make test`) --------------------------------
# Most of the suite's time is real Airflow, MLflow and browser processes waiting on each other, so two
# workers on two cores nearly halve it. A folder whose conftest starts expensive shared servers
# (api-server + MLflow for tests/ui, moto + PostgreSQL for tests/sources, MLflow on PostgreSQL for
# tests/integration) is one unit of work, so they start once; elsewhere a module is the unit (its
# module fixtures, e.g. one Airflow home, stay on one worker).
SHARED_FOLDERS = {"tests/ui", "tests/sources", "tests/integration"}


def _work_unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    folder = path.rsplit("/", 1)[0]
    return folder if folder in SHARED_FOLDERS else path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Units with real Airflow stacks (e2e) first, then live-service ones, unit tests last: the long
    units start early and the short ones fill the tail, so neither worker idles at the end."""
    rank: dict[str, int] = {}  # a unit's cost class: its costliest test's
    first_seen: dict[str, int] = {}  # a unit's place in collection order
    for i, item in enumerate(items):
        cost = 0 if item.get_closest_marker("e2e") else 1 if item.get_closest_marker("integration") else 2
        unit = _work_unit(item.nodeid)
        rank[unit] = min(rank.get(unit, cost), cost)
        first_seen.setdefault(unit, i)
    items.sort(key=lambda item: (rank[_work_unit(item.nodeid)], first_seen[_work_unit(item.nodeid)]))


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the order above, not "most tests first"
    return WorkUnitScheduling(config, log)
