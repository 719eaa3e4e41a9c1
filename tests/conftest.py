"""Test session wiring: each process's private Airflow home (tests/support/env.py), shared fixtures,
and how `make test` splits the suite over two workers. Helpers live in tests/support/."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import env


def pytest_configure(config: pytest.Config) -> None:
    env.activate()  # before any test module imports Airflow: it reads its configuration at import time


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata DB for dag.test()."""
    from mlops_pack.cli.runner import migrate_db

    def migrate() -> None:
        for command in (["db", "migrate"], ["pools", "set", "mlops_registry", "1", "registry writes"]):
            subprocess.run([sys.executable, "-m", "airflow", *command], check=True, capture_output=True, env=os.environ)

    migrate_db(env.HOME / "airflow.db", migrate)
    return env.HOME


@pytest.fixture(scope="session")
def demo_site():
    """The demo site on a free loopback port with small days; yields (base_url, site)."""
    from demo_site.generator import SiteState
    from demo_site.server import serve

    server, site = serve(0, SiteState(day=1, records_per_day=400, page_size=50))
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()


# --- Running the suite on two workers (pytest-xdist, `make test`) --------------------------------
# Most of the suite's time is real Airflow, MLflow and browser processes waiting on each other, so two
# workers on two cores nearly halve it. A folder whose conftest starts expensive shared servers
# (api-server + MLflow for tests/ui, moto + PostgreSQL for tests/sources, MLflow on PostgreSQL for
# tests/integration) is one unit of work, so they start once; elsewhere a module is the group (its
# module fixtures, e.g. one Airflow home, stay on one worker).
SHARED_FOLDERS = {"tests/ui", "tests/sources", "tests/integration"}
HEAVY_FOLDERS = {"tests/e2e", "tests/ui", "tests/sources", "tests/stack", "tests/integration", "tests/cli",
                 "tests/packaging", "tests/operators"}  # real processes or servers: `slow`, left out by test-fast


def _work_unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    folder = path.rsplit("/", 1)[0]
    return folder if folder in SHARED_FOLDERS else path


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark tests in heavy folders `slow`."""
    if "/".join(item.nodeid.split("/")[:2]) in HEAVY_FOLDERS:
        item.add_marker(pytest.mark.slow)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order units with real Airflow stacks (e2e) first, then live-service ones, unit tests last: the
    long units start early and the short ones fill the tail, so neither worker idles at the end
    (`--no-loadscope-reorder` keeps this order)."""
    rank: dict[str, int] = {}  # a unit's cost class: its costliest test's
    first_seen: dict[str, int] = {}  # a unit's place in collection order
    for i, item in enumerate(items):
        unit = _work_unit(item.nodeid)
        cost = 0 if item.get_closest_marker("e2e") else 1 if item.get_closest_marker("integration") else 2
        rank[unit] = min(rank.get(unit, cost), cost)
        first_seen.setdefault(unit, i)
    items.sort(key=lambda item: (rank[_work_unit(item.nodeid)], first_seen[_work_unit(item.nodeid)]))


def pytest_xdist_make_scheduler(config, log):
    """One work unit per module (per folder for SHARED_FOLDERS), in the order above.

    xdist's public `--dist loadgroup` with `xdist_group` marks would say the same, but with
    pytest-xdist 3.8 here the workers did not suffix node ids with their group (tests of one module
    ran on both workers and shared nothing), so the scope is split here, on the scheduler's hook."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the order above, not "most tests first"
    return WorkUnitScheduling(config, log)
