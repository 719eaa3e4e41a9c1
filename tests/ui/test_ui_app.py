"""The plugin's UI app on a real api-server: login, health page, files, links; refusals and traversal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import PIPELINE, get

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(ui_server):
    """(base URL, admin token, api-server environment) of the package's api-server."""
    return ui_server.base, ui_server.token, ui_server.env


ROUTES = ["/mlops/health", f"/mlops/health/{PIPELINE}", f"/mlops/health/dag/{PIPELINE}__monitor",
          f"/mlops/files/{PIPELINE}/reports/drift/2026-11-02__v3/report.html",
          f"/mlops/files/{PIPELINE}/quarantine/2026-11-03/validation.json",
          f"/mlops/files/{PIPELINE}/quarantine/2026-11-03/",
          f"/mlops/files/{PIPELINE}/reports/datadocs/2026-11-02/index.html",
          f"/mlops/files/{PIPELINE}/reports/model_cards/v3/card.html"]
# Redirects to the MLflow UI (307, checked in test_extra_links_...): refused like every route without a login.
REDIRECTS = [f"/mlops/mlflow/models/{PIPELINE}/versions/3", "/mlops/mlflow/runs/1/0123456789abcdef0123456789abcdef"]
# The one route without a login: the vendored library files Data Docs pages load (test_data_docs_...).
PUBLIC = ["/mlops/static/datadocs/jquery/dist/jquery.min.js"]


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


def test_the_routes_checked_here_are_every_route_of_the_app():
    """A route added to the app without a line in ROUTES fails here (so its refusal is tested)."""
    from mlops_pack import settings
    from mlops_pack.ui.app import app

    paths = [route.removeprefix(settings.UI_PREFIX) for route in ROUTES + REDIRECTS + PUBLIC]
    unchecked = [route.path for route in app.routes if not any(route.path_regex.match(p) for p in paths)]
    assert unchecked == []  # FastAPI's own /docs, /redoc, /openapi.json included: they are off


def test_every_route_refuses_anonymous_and_forged_callers(server):
    import jwt

    base, _, _ = server
    forged = jwt.encode({"sub": "1", "aud": "apache-airflow", "role": "ADMIN"}, "not-the-secret-" * 8, algorithm="HS512")
    for route in ROUTES + REDIRECTS:
        assert get(base + route)[0] == 401, route
        assert get(base + route, "garbage")[0] in (401, 403), route
        assert get(base + route, forged)[0] in (401, 403), route
        assert get(base + route, cookie=forged)[0] in (401, 403), route
    for public in ("/mlops/docs", "/mlops/redoc", "/mlops/openapi.json"):  # FastAPI's defaults are off
        assert get(base + public)[0] == 404, public


def test_health_page_shows_the_pipeline_escaped(server):
    base, token, env = server
    status, page, headers = get(f"{base}/mlops/health/{PIPELINE}", token)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Current champion: <b>3</b>" in page
    assert page.count("<svg") >= 3  # rmse and r2 of both models per decision, drift share per version
    assert "v3 vs v1 (300 rows)" in page and "<td>110 [104, 116]</td><td>100 [94, 106]</td>" in page
    for expected in ("promoted", "rejected", "[1, 9] @0.95", "0.6", "city", "Quarantined partitions: <b>1</b>",
                     "Last validated partition: <b>2026-11-02</b>", '"/mlops/mlflow/models/uishop/versions/3"',
                     f'"/mlops/files/{PIPELINE}/reports/drift/2026-11-02__v3/report.html"',
                     f'"/mlops/files/{PIPELINE}/reports/datadocs/2026-11-02/index.html"',
                     f'"/mlops/files/{PIPELINE}/quarantine/2026-11-03/validation.json"',
                     # the params that won v3's search, with its method, trials, metric, CV score and run
                     "<h2>Hyperparameter search</h2>", "loss = &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;<br>"
                     "max_iter = 120</td><td>tpe</td><td>16 (1 failed)</td><td>rmse</td><td>101.2</td>",
                     '"/mlops/mlflow/runs/1/run3"'):
        assert expected in page, expected
    assert PIPELINE in get(f"{base}/mlops/health", token)[1]


def test_the_health_page_links_each_versions_model_card_and_every_link_of_the_card_opens(server):
    import re
    from urllib.parse import urljoin

    base, token, _ = server
    page = get(f"{base}/mlops/health/{PIPELINE}", token)[1]
    card_url = f"/mlops/files/{PIPELINE}/reports/model_cards/v3/card.html"
    assert page.count(f'href="{card_url}"') == 1  # v3 has a card; v1 and v2 none (yet)
    status, card, headers = get(base + card_url, token)
    assert status == 200 and "Model card: uishop v3" in card
    assert "<script>" not in card and "&lt;script&gt;" in card  # the estimator and the drifted column, escaped
    assert headers["Content-Security-Policy"].startswith("sandbox")  # stored HTML, like every report
    links = re.findall(r'href="([^"]+)"', card)
    assert {"card.json", "../../../reports/drift/2026-11-02__v3/report.html",
            "../../../../../mlflow/models/uishop/versions/3"} <= set(links), links
    for link in links:  # each opens: a stored file, or the redirect to the MLflow UI configured now
        status, location = redirect(urljoin(base + card_url, link), token)
        assert status == 200 or (status, location) == (307, f"{server[2]['AIRFLOW__MLOPS__MLFLOW_UI_URL']}"
                                                             "/#/models/uishop/versions/3"), (link, status)


@pytest.mark.parametrize("path", [
    "state/drift_signal.json", "reports/../state/drift_signal.json", "reports/%2e%2e/state/drift_signal.json",
    "reports/..%2F..%2Foutside.txt", "reports/escape/outside.txt", "quarantine/..%5C..%5Coutside.txt",
    "reports/drift/../../../outside.txt", "validated/2026-11-02/manifest.json", "%2Fetc%2Fpasswd",
    # a link inside a served area to elsewhere in the pipeline folder: a file, a folder listing
    "reports/inner/state/drift_signal.json", "reports/inner/validated/2026-11-02/manifest.json",
    "reports/inner/", "reports/inner/state/", "reports/promos/", "reports/promos/2026-11-01T000000_v1.json",
])
def test_files_outside_the_served_areas_are_refused(server, path):
    base, token, _ = server
    status, body, _ = get(f"{base}/mlops/files/{PIPELINE}/{path}", token)
    assert status in (400, 403, 404), (path, status)
    assert "outside the pipeline" not in body and "state is not served" not in body


def test_data_docs_pages_load_their_assets_from_the_plugin(server):
    """A stored Data Docs page is served with GX's CDN URLs pointed at the plugin's vendored copies,
    which answer without a login (a sandboxed page's requests carry no cookie) and with CORS for its
    fonts; nothing but a vendored file is served there."""
    from mlops_pack.ui.datadocs import vendored

    base, token, _ = server
    page = get(f"{base}/mlops/files/{PIPELINE}/reports/datadocs/2026-11-03/index.html", token)[1]
    assert "https://code.jquery.com" not in page and "s3.us-east-2.amazonaws.com" not in page
    assert '<script src="/mlops/static/datadocs/jquery/dist/jquery.min.js">' in page
    assert '<img src="/mlops/static/datadocs/great_expectations/images/logo-long.png">' in page
    for path in vendored():
        status, _, headers = get(f"{base}/mlops/static/datadocs/{path}")
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*", path
    assert get(f"{base}/mlops/static/datadocs/jquery/dist/jquery.min.js")[2]["Content-Type"].startswith(
        "text/javascript")
    for bad in ("package.json", "jquery/LICENSE.txt", "../app.py", "..%2F..%2Fapp.py", "jquery/dist/core.js"):
        assert get(f"{base}/mlops/static/datadocs/{bad}")[0] == 404, bad


def test_other_pipeline_names_are_refused(server):
    base, token, _ = server
    assert get(f"{base}/mlops/files/..%2F{PIPELINE}/reports/drift/2026-11-01__v1/report.html", token)[0] == 404
    assert get(f"{base}/mlops/health/Not-A-Name", token)[0] == 404


def test_extra_links_are_same_origin_paths_that_open_and_redirect_to_the_configured_mlflow_ui(server):
    """The links' URLs, computed as the worker does, are paths (no host or port to go stale) that open
    (200) on the api-server; the MLflow ones redirect to the MLflow UI configured when they are opened."""
    base, token, env = server
    script = f"""
import os
os.environ.update({{k: v for k, v in {env!r}.items() if k.startswith("AIRFLOW__")}})
from mlops_pack.links import storage_path, mlflow_model_path, mlflow_run_path
from mlops_pack import settings
root = settings.storage_root()
print(storage_path(root + "/{PIPELINE}/reports/drift/2026-11-02__v3/report.html"))
print(storage_path(root + "/{PIPELINE}/reports/datadocs/2026-11-02/index.html"))
print(mlflow_model_path("{PIPELINE}", "3"))
print(mlflow_run_path("1", "0123456789abcdef0123456789abcdef"))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "plugins")})
    report, docs, model, run = out.stdout.split()[-4:]
    assert report.startswith("/mlops/files/") and docs.startswith("/mlops/files/")
    assert get(base + report, token)[0] == 200 and "Evidently report" in get(base + report, token)[1]
    assert get(base + docs, token)[0] == 200
    mlflow_ui = env["AIRFLOW__MLOPS__MLFLOW_UI_URL"]
    for path, page in ((model, "/#/models/uishop/versions/3"),
                       (run, "/#/experiments/1/runs/0123456789abcdef0123456789abcdef")):
        status, location = redirect(base + path, token)
        assert (status, location) == (307, mlflow_ui + page)
        assert redirect(base + path, None)[0] == 401  # the app checks the caller, as every route does
    assert redirect(f"{base}/mlops/mlflow/models/uishop/versions/3%22onload", token)[0] == 404


def redirect(url: str, token: str | None) -> tuple[int, str]:
    """Status and Location of ``url`` without following a redirect."""
    import httpx

    answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"} if token else {}, follow_redirects=False,
                       timeout=60)
    return answer.status_code, answer.headers.get("location", "")


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
