"""One api-server with the pack's plugin for every UI test, an MLflow UI beside it, and Debian Chromium.

The server is package-scoped: tests/ui starts it once, whichever of its modules runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import HOME
from tests.support.ports import free_port
from tests.support.waiting import DEADLINE

PIPELINE = "uishop"  # seeded storage, as the loop leaves it
HOSTILE = "<script>alert('x')</script>"
PASSWORD = "ui-test-password"
VIEWER_PASSWORD = "ui-test-viewer"
# Two people who may act on DAGs (role user): ana, the pipelines' named approver, and bob, who is not one.
PASSWORDS = {"admin": PASSWORD, "viewer": VIEWER_PASSWORD, "ana": "ui-test-ana", "bob": "ui-test-bob"}
CHROMIUM = Path("/usr/bin/chromium")


def seed(root: Path) -> None:
    """A pipeline's storage as the loop leaves it, with scraped (hostile) values in it."""
    (root / "promotions").mkdir(parents=True)
    # v1 first, judged alone; v2 (rejected) and v3 (promoted) each against v1 on their shared rows
    for version, decision, rmse, after in (("1", "promoted", 120.0, "1"), ("2", "rejected", 130.0, "1"),
                                           ("3", "promoted", 100.0, "3")):
        before = None if version == "1" else "1"
        paired = {"champion_metrics": {"rmse": 110.0, "r2": 0.88},
                  "holdout": {"rows_used": 300, "rows_removed": 20, "source_rows": 320}} if before else {}
        # v3 came from a search (core/search.py search_record); a param's value can be any text
        search = {"search": {"run_id": "run3", "experiment_id": "1", "study": "uishop-1", "method": "tpe",
                             "metric": "rmse", "trials": 16, "failed": 1, "cv_score": 101.25,
                             "best_params": {"max_iter": 120, "loss": HOSTILE}}} if version == "3" else {}
        (root / "promotions" / f"2026-11-0{version}T000000_v{version}.json").write_text(json.dumps({
            "model": PIPELINE, "version": version, "decision": decision, "reason": f"because {HOSTILE}",
            "challenger_metrics": {"rmse": rmse, "r2": 0.9}, "champion_before": before, "champion_after": after,
            "intervals": [{"metric": "rmse", "improvement": 5.0, "low": 1.0, "high": 9.0, "confidence": 0.95,
                           "champion_ci": [104.0, 116.0], "challenger_ci": [rmse - 6, rmse + 6]}],
            "approved_by": "policy", "dag_id": f"{PIPELINE}__train", "run_id": "manual__1", **paired, **search}))
    for key, share, cols in (("2026-11-01__v1", 0.0, []), ("2026-11-02__v3", 0.6, ["city", HOSTILE])):
        folder = root / "reports" / "drift" / key
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"share": share, "threshold": 0.5, "drift": share >= 0.5,
                                                         "drifted_columns": cols,
                                                         "model_version": key.rsplit("__v", 1)[1]}))
        (folder / "report.html").write_text(f"<html><body>Evidently report {key}</body></html>")
    (root / "validated" / "2026-11-02").mkdir(parents=True)
    (root / "validated" / "2026-11-02" / "manifest.json").write_text(json.dumps(
        {"partition": "2026-11-02", "rows": 400, "version": "abc123", "written_at": "2026-11-02T00:00:00"}))
    (root / "quarantine" / "2026-11-03").mkdir(parents=True)
    (root / "quarantine" / "2026-11-03" / "validation.json").write_text(json.dumps(
        {"success": False, "failed": 1, "evaluated": 5, "failures": [{"expectation": "not_null", "column": HOSTILE}]}))
    for key in ("2026-11-02", "2026-11-03"):
        (root / "reports" / "datadocs" / key).mkdir(parents=True)
        (root / "reports" / "datadocs" / key / "index.html").write_text(  # what GX writes: assets from CDNs
            f'<html><script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>GX Data Docs {key}<img src='
            '"https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=x">'
            '</html>')
    seed_model_card(root, "3")
    (root / "state").mkdir()
    (root / "state" / "drift_signal.json").write_text('{"secret": "state is not served"}')
    (root.parent / "outside.txt").write_text("outside the pipeline")
    (root / "reports" / "escape").symlink_to(root.parent)
    # links that stay inside the pipeline folder but leave the served area (issue 25, case 1)
    (root / "reports" / "inner").symlink_to(root)
    (root / "reports" / "promos").symlink_to(root / "promotions")


def seed_model_card(root: Path, version: str) -> None:
    """The model card the promote task writes for ``version`` (core/model_card.py), from the seeded records."""
    from mlops_pack.core.model_card import assemble, card_folder, gather_evidence, render_html

    card = assemble(pipeline=PIPELINE, version=version, tags={"decision": "promoted", "holdout_rmse": "100",
                                                              "data_version": "abc123"},
                    params={"estimator": HOSTILE, "train_rows": "800"}, run_id="0123456789abcdef",
                    created_at="2026-11-03T00:00:00", inputs=None, aliases=["champion"],
                    evidence=gather_evidence(root, version), slices=["city"], updated_at="2026-11-03T00:00:00")
    folder = root / card_folder(version)
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps(card))
    (folder / "card.html").write_text(render_html(card))


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = DEADLINE) -> None:
    """Return once ``url`` answers (any HTTP status); fail with the process's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def stop(proc: subprocess.Popen, group: bool = False) -> None:
    """Stop a process this module started; with ``group``, its whole session (mlflow's uvicorn child)."""
    def send(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class UiServer:
    base: str
    token: str  # the admin's, from POST /auth/token
    env: dict[str, str]
    mlflow_url: str  # what [mlops] mlflow_ui_url says; see the mlflow_ui fixture
    home: Path


def api_server_env(home: Path, base: str, mlflow_url: str) -> dict[str, str]:
    """The environment of an api-server at ``base`` with the pack's plugin, whose MLflow links redirect to
    ``mlflow_url``: the test process's Airflow home (its metadata DB, storage and MLflow store)."""
    return {**os.environ, "AIRFLOW__MLOPS__UI_BASE_URL": base, "AIRFLOW__MLOPS__MLFLOW_UI_URL": mlflow_url,
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),  # the entry point loads it
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,ana:user,bob:user",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": "ui-test-jwt-secret",
            "AIRFLOW__API__BASE_URL": base}


def start_api_server(home: Path, env: dict[str, str], port: int, log_name: str) -> subprocess.Popen:
    """An api-server on 127.0.0.1:``port``, once it answers."""
    log = home / log_name
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "-p", str(port), "--host", "127.0.0.1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", proc, log, "api-server")
    return proc


def start_mlflow_ui(home: Path, port: int, log_name: str) -> subprocess.Popen:
    """A real MLflow UI (``mlflow server``) on the tests' MLflow store; not waited for."""
    with (home / log_name).open("w") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
             os.environ["AIRFLOW__MLOPS__MLFLOW_TRACKING_URI"], "--default-artifact-root",
             os.environ["AIRFLOW__MLOPS__MLFLOW_ARTIFACT_ROOT"], "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            # the UI only: no job runner and its seven huey consumers
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


@pytest.fixture(scope="package")
def ui_server(airflow_db, tmp_path_factory):
    """The api-server with the pack's plugin (from its entry point only), SimpleAuthManager users
    ``admin`` (admin), ``viewer`` (viewer), ``ana`` and ``bob`` (user), links pointed at it and at the
    MLflow UI's port.

    The test process gets the same ``[mlops]`` URLs, so the links its ``dag.test()`` runs store match.
    """
    seed(HOME / "data" / PIPELINE)
    home = tmp_path_factory.mktemp("ui")
    (home / "passwords.json").write_text(json.dumps(PASSWORDS))
    (home / "plugins").mkdir()
    port, mlflow_port = free_port(), free_port()
    base, mlflow_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mlflow_port}"
    links = {"AIRFLOW__MLOPS__UI_BASE_URL": base, "AIRFLOW__MLOPS__MLFLOW_UI_URL": mlflow_url}
    env = api_server_env(home, base, mlflow_url)
    proc = start_api_server(home, env, port, "api-server.log")
    saved = {k: os.environ.get(k) for k in links}
    os.environ.update(links)
    try:
        yield UiServer(base, token_of(base, "admin"), env, mlflow_url, home)
    finally:
        stop(proc)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def token_of(base: str, user: str) -> str:
    """A token of ``user`` (one of :data:`PASSWORDS`) from the api-server's ``POST /auth/token``."""
    request = urllib.request.Request(f"{base}/auth/token", data=json.dumps(
        {"username": user, "password": PASSWORDS[user]}).encode(), headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())["access_token"]


@pytest.fixture(scope="package")
def mlflow_ui(ui_server):
    """A real MLflow UI (``mlflow server``) on the tests' MLflow store, at ``[mlops] mlflow_ui_url``.

    Yields a function that waits until it answers: it starts while the caller does other work.
    """
    log = "mlflow.log"
    proc = start_mlflow_ui(ui_server.home, int(ui_server.mlflow_url.rsplit(":", 1)[1]), log)

    def ready() -> str:
        wait_for_http(f"{ui_server.mlflow_url}/health", proc, ui_server.home / log, "mlflow server")
        return ui_server.mlflow_url

    yield ready
    stop(proc, group=True)


def ensure_chromium() -> Path:
    """Debian's ``chromium`` (installed with apt-get when missing); fails saying why it cannot be had."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"Debian chromium is missing ({CHROMIUM}) and apt-get is not available: install chromium")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = [*sudo, apt, "install", "-y", "--no-install-recommends", "chromium"]
    answer = subprocess.run(install, capture_output=True, text=True, timeout=1200)
    if answer.returncode != 0:  # an image without package lists: fetch them once, then retry
        subprocess.run([*sudo, apt, "update"], capture_output=True, text=True, timeout=600)
        answer = subprocess.run(install, capture_output=True, text=True, timeout=1200)
    if answer.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(f"could not install Debian chromium with `{' '.join(install)}` (exit {answer.returncode}):\n"
                    f"{(answer.stdout + answer.stderr)[-2000:]}")
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by playwright (no browser download).

    Playwright's sync API keeps an event loop running in this thread while it is open: enter it only
    after code that calls ``asyncio.run`` (a DAG run's scrape) is done.
    """
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True,
                                             args=["--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the redirect itself is the answer


def get(url: str, token: str | None = None, cookie: str | None = None, headers: dict[str, str] | None = None,
        method: str = "GET", body: Any = None) -> tuple[int, str, Any]:
    """(status, body, headers) of one request; redirects are not followed."""
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    if cookie:
        headers["Cookie"] = f"_token={cookie}"
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, headers=headers, data=data, method=method)
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as answer:
            return answer.status, answer.read().decode(errors="replace"), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers
