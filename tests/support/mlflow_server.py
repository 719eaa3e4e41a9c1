"""An ``mlflow server`` a test can kill -9 and start again (same port, same store), and the trained
model versions the promotion tests judge."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.ports import free_port, require_service
from tests.support.waiting import DEADLINE


class Server:
    """An ``mlflow server`` in its own process group, so kill -9 takes its workers down too."""

    def __init__(self, db_url: str, folder: Path):
        self.db_url, self.folder, self.port = db_url, folder, free_port()
        self.url, self.proc = f"http://127.0.0.1:{self.port}", None

    def start(self) -> None:
        log = (self.folder / "mlflow-server.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.db_url,
             "--artifacts-destination", f"file://{self.folder / 'artifacts'}", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "2"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job runner: less CPU
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise TimeoutError(f"mlflow server did not start: see {self.folder / 'mlflow-server.log'}")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def train_versions(hook, spec_path: Path, root: str, sizes: list[int]) -> list[str]:
    """Register one version of ``spec_path``'s model per entry of ``sizes``, each trained on that many rows
    of two demo days (0: all of them), through ``hook.log_training_run`` like the train task."""
    import pandas as pd
    from airflow.sdk import ObjectStoragePath
    from demo_site.generator import SiteState, day_records
    from mlops_pack.core.spec import load_spec
    from mlops_pack.core.storage import write_partition
    from mlops_pack.core.train import fit

    spec = load_spec(spec_path)
    days = pd.concat([pd.DataFrame(day_records(SiteState(day=d, records_per_day=1500))) for d in (1, 2)])
    versions = []
    for i, rows in enumerate(sizes, start=1):
        trained = fit(days.head(rows) if rows else days, spec.model)
        folder = ObjectStoragePath(f"{root}/{spec.name}/training/v{i}")
        result = hook.log_training_run(spec, trained, train_manifest=write_partition(folder / "train", trained.train),
                                       holdout_manifest=write_partition(folder / "holdout", trained.holdout),
                                       tags={"airflow.run_id": f"setup_{i}"})
        versions.append(result["version"])
    return versions


@contextlib.contextmanager
def server_on_new_database(prefix: str, folder: Path) -> Iterator[Server]:
    """A started :class:`Server` on a new PostgreSQL database (127.0.0.1:5432) named ``prefix_<random>``,
    dropped afterwards with whatever the test left in it."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    srv = Server(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", folder)
    try:
        srv.start()
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.kill()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
