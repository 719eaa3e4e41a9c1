"""The plugin's UI app on a real api-server: login, health page, files, links; refusals and traversal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOME, free_port

pytestmark = pytest.mark.e2e

PIPELINE = "uishop"
HOSTILE = "<script>alert('x')</script>"
PASSWORD = "ui-test-password"


def _seed(root: Path) -> None:
    """A pipeline's storage as the loop leaves it, with scraped (hostile) values in it."""
    (root / "promotions").mkdir(parents=True)
    for version, decision, rmse in (("1", "promoted", 120.0), ("2", "rejected", 130.0), ("3", "promoted", 100.0)):
        (root / "promotions" / f"2026-11-0{version}T000000_v{version}.json").write_text(json.dumps({
            "model": PIPELINE, "version": version, "decision": decision, "reason": f"because {HOSTILE}",
            "challenger_metrics": {"rmse": rmse, "r2": 0.9}, "champion_before": None, "champion_after": version,
            "intervals": [{"metric": "rmse", "improvement": 5.0, "low": 1.0, "high": 9.0, "confidence": 0.95}],
            "approved_by": "policy", "dag_id": f"{PIPELINE}__train", "run_id": "manual__1"}))
    for key, share, cols in (("2026-11-01__v1", 0.0, []), ("2026-11-02__v3", 0.6, ["city", HOSTILE])):
        folder = root / "reports" / "drift" / key
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"share": share, "threshold": 0.5, "drift": share >= 0.5,
                                                         "drifted_columns": cols, "model_version": "1"}))
        (folder / "report.html").write_text(f"<html><body>Evidently report {key}</body></html>")
    (root / "validated" / "2026-11-02").mkdir(parents=True)
    (root / "validated" / "2026-11-02" / "manifest.json").write_text(json.dumps(
        {"partition": "2026-11-02", "rows": 400, "version": "abc123", "written_at": "2026-11-02T00:00:00"}))
    (root / "quarantine" / "2026-11-03").mkdir(parents=True)
    (root / "quarantine" / "2026-11-03" / "validation.json").write_text(json.dumps(
        {"success": False, "failed": 1, "evaluated": 5, "failures": [{"expectation": "not_null", "column": HOSTILE}]}))
    for key in ("2026-11-02", "2026-11-03"):
        (root / "reports" / "datadocs" / key).mkdir(parents=True)
        (root / "reports" / "datadocs" / key / "index.html").write_text(f"<html>GX Data Docs {key}</html>")
    (root / "state").mkdir()
    (root / "state" / "drift_signal.json").write_text('{"secret": "state is not served"}')
    (root.parent / "outside.txt").write_text("outside the pipeline")
    (root / "reports" / "escape").symlink_to(root.parent)


@pytest.fixture(scope="module")
def server(airflow_db, tmp_path_factory):
    """One api-server with the pack's plugin (from its entry point only) for this module."""
    _seed(HOME / "data" / PIPELINE)
    home = tmp_path_factory.mktemp("ui")
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    (home / "plugins").mkdir()
    port = free_port()
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),  # the entry point loads it
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__API_AUTH__JWT_SECRET": "ui-test-jwt-secret",
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
           "AIRFLOW__MLOPS__MLFLOW_UI_URL": "http://127.0.0.1:5999"}
    log = (home / "api-server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "-p", str(port), "--host", "127.0.0.1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"api-server did not start:\n{(home / 'api-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
    request = urllib.request.Request(f"{base}/auth/token", data=json.dumps(
        {"username": "admin", "password": PASSWORD}).encode(), headers={"Content-Type": "application/json"})
    token = json.loads(urllib.request.urlopen(request, timeout=30).read())["access_token"]
    yield base, token, env
    proc.terminate()
    proc.wait(timeout=30)


def get(url: str, token: str | None = None, cookie: str | None = None) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if cookie:
        headers["Cookie"] = f"_token={cookie}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
            return answer.status, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


ROUTES = ["/mlops/health", f"/mlops/health/{PIPELINE}", f"/mlops/health/dag/{PIPELINE}__monitor",
          f"/mlops/files/{PIPELINE}/reports/drift/2026-11-02__v3/report.html",
          f"/mlops/files/{PIPELINE}/quarantine/2026-11-03/validation.json",
          f"/mlops/files/{PIPELINE}/quarantine/2026-11-03/",
          f"/mlops/files/{PIPELINE}/reports/datadocs/2026-11-02/index.html"]


def test_every_route_answers_a_logged_in_user(server):
    base, token, _ = server
    for route in ROUTES:
        status, body, _ = get(base + route, token)
        assert status == 200, (route, status, body[:300])
    _, report, headers = get(base + ROUTES[3], token)
    assert "Evidently report 2026-11-02__v3" in report
    assert headers["Content-Security-Policy"].startswith("sandbox allow-scripts")  # stored HTML: no Airflow origin
    assert "default-src 'none'" in get(base + ROUTES[1], token)[2]["Content-Security-Policy"]
    assert "GX Data Docs 2026-11-02" in get(base + ROUTES[6], token)[1]
    assert json.loads(get(base + ROUTES[4], token)[1])["failed"] == 1
    # the browser's way: the UI's _token cookie
    assert get(base + ROUTES[1], cookie=token)[0] == 200


def test_every_route_refuses_anonymous_and_forged_callers(server):
    import jwt

    base, _, _ = server
    forged = jwt.encode({"sub": "1", "aud": "apache-airflow", "role": "ADMIN"}, "not-the-secret-" * 8, algorithm="HS512")
    for route in ROUTES:
        assert get(base + route)[0] == 401, route
        assert get(base + route, "garbage")[0] in (401, 403), route
        assert get(base + route, forged)[0] in (401, 403), route
        assert get(base + route, cookie=forged)[0] in (401, 403), route


def test_health_page_shows_the_pipeline_escaped(server):
    base, token, _ = server
    status, page, headers = get(f"{base}/mlops/health/{PIPELINE}", token)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Current champion: <b>3</b>" in page
    assert page.count("<svg") >= 3  # rmse and r2 per version, drift share
    for expected in ("promoted", "rejected", "[1, 9] @0.95", "0.6", "city", "Quarantined partitions: <b>1</b>",
                     "Last validated partition: <b>2026-11-02</b>", "http://127.0.0.1:5999/#/models/uishop/versions/3",
                     f"{base}/mlops/files/{PIPELINE}/reports/drift/2026-11-02__v3/report.html",
                     f"{base}/mlops/files/{PIPELINE}/reports/datadocs/2026-11-02/index.html",
                     f"{base}/mlops/files/{PIPELINE}/quarantine/2026-11-03/validation.json"):
        assert expected in page, expected
    assert PIPELINE in get(f"{base}/mlops/health", token)[1]


@pytest.mark.parametrize("path", [
    "state/drift_signal.json", "reports/../state/drift_signal.json", "reports/%2e%2e/state/drift_signal.json",
    "reports/..%2F..%2Foutside.txt", "reports/escape/outside.txt", "quarantine/..%5C..%5Coutside.txt",
    "reports/drift/../../../outside.txt", "validated/2026-11-02/manifest.json", "%2Fetc%2Fpasswd",
])
def test_files_outside_the_served_areas_are_refused(server, path):
    base, token, _ = server
    status, body, _ = get(f"{base}/mlops/files/{PIPELINE}/{path}", token)
    assert status in (400, 403, 404), (path, status)
    assert "outside the pipeline" not in body and "state is not served" not in body


def test_other_pipeline_names_are_refused(server):
    base, token, _ = server
    assert get(f"{base}/mlops/files/..%2F{PIPELINE}/reports/drift/2026-11-01__v1/report.html", token)[0] == 404
    assert get(f"{base}/mlops/health/Not-A-Name", token)[0] == 404


def test_extra_links_point_at_the_served_files(server):
    """The links' URLs, computed as the worker does, open (200) on the api-server."""
    base, token, env = server
    script = f"""
import os
os.environ.update({{k: v for k, v in {env!r}.items() if k.startswith("AIRFLOW__")}})
from mlops_pack.links import storage_url
from mlops_pack.hooks.mlflow import MlflowHook
from mlops_pack import settings
root = settings.storage_root()
print(storage_url(root + "/{PIPELINE}/reports/drift/2026-11-02__v3/report.html"))
print(storage_url(root + "/{PIPELINE}/reports/datadocs/2026-11-02/index.html"))
print(MlflowHook().model_version_url("{PIPELINE}", "3"))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "plugins")})
    report, docs, mlflow_url = out.stdout.split()[-3:]
    assert report.startswith(base + "/mlops/files/") and docs.startswith(base + "/mlops/files/")
    assert get(report, token)[0] == 200 and "Evidently report" in get(report, token)[1]
    assert get(docs, token)[0] == 200
    assert mlflow_url == "http://127.0.0.1:5999/#/models/uishop/versions/3"


def test_plugin_is_registered_once_with_its_views(server):
    base, token, _ = server
    status, body, _ = get(f"{base}/api/v2/plugins", token)
    plugins = [p for p in json.loads(body)["plugins"] if p["name"] == "mlops_pack"]
    assert status == 200 and len(plugins) == 1
    assert {v["href"] for v in plugins[0]["external_views"]} == {"/mlops/health", "/mlops/health/dag/{DAG_ID}"}
    errors = json.loads(get(f"{base}/api/v2/plugins/importErrors", token)[1])["import_errors"]
    # A stale build artefact (plugins/*.egg-info, ignored by git) on sys.path through the editable
    # install's .pth lists the entry point a second time; a clean install has no import error.
    stale = list((Path(__file__).resolve().parents[2] / "plugins").glob("*.egg-info"))
    assert [e for e in errors if not (stale and "already registered" in e["error"])] == [], errors
