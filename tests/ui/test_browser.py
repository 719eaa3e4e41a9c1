"""What a user sees, in headless Debian Chromium: the real login page, the model health page in the
navigation and on a DAG page, and every extra link of a real validate, train, promote and drift task
opening (200) with the content it names; then the UI restarted on other ports (a new api-server and
MLflow UI on the same home) and every link, stored before the move, opening again (200). Data Docs
open offline-complete: their scripts and styles from the plugin, the validations list filled.

The pipeline runs for real (dag.test(): the demo site, GX, MLflow on SQLite, Evidently) in the
package's Airflow home, so the package's api-server shows its task instances; the MLflow links open
in a real MLflow UI on the same store. Screenshots go to the test's tmp dir; with
``MLOPS_UI_SCREENSHOTS=<folder>`` the ones docs/ui.md shows are also written there (see docs/ui.md).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.env import HOME
from tests.support.specs import write_dag_file, write_spec
from tests.support.waiting import DEADLINE
from tests.ui.conftest import VIEWER_PASSWORD, chromium

pytestmark = pytest.mark.e2e

NAME = "uiloop"
WAIT_MS = DEADLINE * 1000  # a busy 2-core machine renders the UI slowly; nothing here measures time
DOC_SHOTS = {"health-dag-tab.png": "health-tab.png", "health-page.png": "health.png",
             "drift_report-drift-report.png": "drift-report.png"}


@dataclasses.dataclass
class Loop:
    runs: dict[str, str]  # stage -> Airflow run_id
    mlflow_run_id: str


@pytest.fixture(scope="module")
def loop(ui_server, mlflow_ui, demo_site, airflow_db) -> Loop:
    """One market day through ingest, train, score and monitor, as the loop runs them."""
    from mlflow import MlflowClient
    from mlops_pack.dag_factory import build_dags

    url, site = demo_site
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))
    # 400 listings a day hold out 80 rows: let the gate judge them
    spec = write_spec(HOME / "pipelines", url, name=NAME, **{"min_holdout_rows: 200": "min_holdout_rows: 50"})
    write_dag_file(spec, NAME)
    runs = {}
    for stage in ("ingest", "train", "score", "monitor"):
        if stage == "train":
            mlflow_ui()  # started with the ingest; its store is created before the train writes to it
        run = build_dags(spec)[f"{NAME}__{stage}"].test()
        assert run.state == "success", stage
        runs[stage] = run.run_id
    version = MlflowClient(os.environ["AIRFLOW__MLOPS__MLFLOW_TRACKING_URI"]).get_model_version(NAME, "1")
    return Loop(runs, version.run_id)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser(loop):
    with chromium() as browser:  # after the DAG runs: playwright keeps an event loop in this thread
        yield browser


def signed_in(browser: Any, base: str) -> Any:
    """A page of a new browser context signed in at ``base`` as ``viewer`` (a read-only user) through
    Airflow's real login page; it records the responses it gets (``page.responses``: (url, status))."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    context.responses = []
    context.on("response", lambda r: context.responses.append((r.url, r.status)))
    page = context.new_page()
    page.goto(base + "/")
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill(VIEWER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    assert "_token" in {c["name"] for c in context.cookies()}
    return page


@pytest.fixture(scope="module")
def page(ui_server, browser, shots):
    page = signed_in(browser, ui_server.base)
    yield page
    page.context.close()
    if os.environ.get("MLOPS_UI_SCREENSHOTS"):
        target = Path(os.environ["MLOPS_UI_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for name, doc_name in DOC_SHOTS.items():
            if (shots / name).exists():
                shutil.copyfile(shots / name, target / doc_name)


def health_frame(page: Any) -> Any:
    """The plugin page inside the Airflow UI's frame, once it shows the pipeline."""
    frame = page.frame_locator("iframe")
    frame.get_by_role("heading", name=f"Model health: {NAME}").wait_for()
    return frame


def test_model_health_page_in_the_navigation_and_on_the_dag_page(page, ui_server, loop, shots):
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Model health").click()
    # The UI may mirror the iframe's own path into its URL (/plugin/mlops_health/mlops/health) before
    # this wait starts on a slow machine: any URL under the plugin's route is the page.
    page.wait_for_url("**/plugin/mlops_health**")
    page.frame_locator("iframe").get_by_role("link", name=NAME).click()
    frame = health_frame(page)
    page.screenshot(path=str(shots / "health-nav.png"))

    page.goto(f"{ui_server.base}/dags/{NAME}__train")
    page.get_by_role("tab", name="Model health").or_(page.get_by_role("link", name="Model health")).first.click()
    frame = health_frame(page)
    body = frame.locator("body")
    assert "Current champion: 1" in body.inner_text()
    assert frame.locator("td.promoted").first.inner_text() == "promoted"
    assert frame.locator("svg").count() >= 1  # drift share per version (one model: no paired chart yet)
    assert "none: first model, judged alone" in body.inner_text()
    # Same-origin paths: no host or port in a stored page or link that a move of Airflow or MLflow breaks.
    assert frame.get_by_role("link", name="report").get_attribute("href") == (
        f"/mlops/files/{NAME}/reports/drift/2026-11-01__v1/report.html")
    assert frame.get_by_role("link", name="Data Docs").get_attribute("href") == (
        f"/mlops/files/{NAME}/reports/datadocs/2026-11-01/index.html")
    assert frame.get_by_role("link", name="v1").get_attribute("href") == f"/mlops/mlflow/models/{NAME}/versions/1"
    run = frame.get_by_role("link", name=f"{NAME}__train")
    assert run.get_attribute("href") == f"/dags/{NAME}__train/runs/{quote(loop.runs['train'], safe='')}"
    page.screenshot(path=str(shots / "health-dag-tab.png"))
    page.goto(f"{ui_server.base}/mlops/health/{NAME}")  # the page itself, whole
    page.get_by_role("heading", name=f"Model health: {NAME}").wait_for()
    page.screenshot(path=str(shots / "health-page.png"), full_page=True)


def follow(page: Any, link: Any, mlflow_url: str) -> tuple[Any, Any]:
    """Click an extra link as a user does; (the page it opened, the response to its navigation). Links
    are same-origin paths; the MLflow ones redirect to the MLflow UI configured now."""
    from urllib.parse import urljoin

    href = link.get_attribute("href")
    assert href and href.startswith("/"), href
    document = urljoin(page.url, href).split("#")[0]

    def arrived(r: Any) -> bool:
        if not r.request.is_navigation_request() or 300 <= r.status < 400:
            return False
        return r.url.startswith(mlflow_url) if href.startswith("/mlops/mlflow/") else r.url == document

    with page.context.expect_event("response", predicate=arrived) as answer:
        if link.get_attribute("target") == "_blank":
            with page.context.expect_page() as opened:
                link.click()
            shown = opened.value
        else:
            link.click()
            shown = page
    return shown, answer.value


# (stage, task, map index, link name, text the opened page shows: a str, or a Loop -> str)
LINKS = [
    ("ingest", "validate", -1, "Data Docs", f"{NAME}_suite"),  # the suite's validation, listed
    ("train", "train", -1, "MLflow run", lambda loop: loop.mlflow_run_id),
    ("train", "train", -1, "MLflow model version", lambda loop: loop.runs["train"]),  # the version's airflow.run_id tag
    ("train", "promote", -1, "MLflow model version", lambda loop: loop.runs["train"]),
    ("monitor", "drift_report", 0, "Drift report", "Dataset Drift is NOT detected"),
]


@pytest.mark.parametrize(("stage", "task", "map_index", "name", "expected"), LINKS,
                         ids=[f"{t}-{n}" for _, t, _, n, _ in LINKS])
def test_each_extra_link_opens_what_it_names(page, ui_server, loop, shots, stage, task, map_index, name, expected):
    shown = open_extra_link(page, ui_server.base, ui_server.mlflow_url, loop, (stage, task, map_index, name, expected))
    slug = name.lower().replace(" ", "-")
    shown.screenshot(path=str(shots / f"{task}-{slug}.png"), full_page=True)
    if shown is not page:
        shown.close()


def open_extra_link(page: Any, base: str, mlflow_url: str, loop: Loop, link_row: tuple) -> Any:
    """Open a task's extra link from its Details tab on the UI at ``base``; assert it answers 200 with the
    page it names (MLflow ones at ``mlflow_url``); returns the page that shows it."""
    stage, task, map_index, name, expected = link_row
    dag_id, run_id = f"{NAME}__{stage}", loop.runs[stage]
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    page.goto(f"{base}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task}{mapped}")
    page.get_by_role("tab", name="Details").or_(page.get_by_role("link", name="Details")).first.click()
    page.get_by_text("Extra Links").wait_for()
    link = page.get_by_role("link", name=name, exact=True)
    before = len(page.context.responses)
    shown, response = follow(page, link, mlflow_url)
    assert response.status == 200, (link.get_attribute("href"), response.status)
    text = expected(loop) if callable(expected) else expected
    if name == "Data Docs":  # offline-complete: the validations list is filled by its vendored scripts
        assert text in response.text()
        rows = shown.locator("table.ge-index-page-validation-results-table tbody tr")
        rows.first.wait_for()
        assert text in rows.first.inner_text() and "Data Docs" in shown.locator("body").inner_text()
        loaded = page.context.responses[before:]
        external = [u for u, _ in loaded if not u.startswith(("http://127.0.0.1:", "data:", "about:"))]
        assert external == []  # nothing from a CDN, or anywhere else
        assets = {u.split("/mlops/static/datadocs/", 1)[1]: status for u, status in loaded
                  if "/mlops/static/datadocs/" in u}
        assert {"jquery/dist/jquery.min.js", "bootstrap/dist/css/bootstrap.min.css"} <= set(assets), assets
        assert set(assets.values()) == {200}, assets
    else:
        shown.get_by_text(text).first.wait_for()
    return shown


@pytest.fixture(scope="module")
def moved(ui_server, browser, loop, mlflow_ui):
    """The same Airflow home's UI restarted on other ports: a new api-server and a new MLflow UI, each on
    a new free port, with ``[mlops] mlflow_ui_url`` naming the new MLflow; (signed-in page, base, MLflow URL).
    The links were stored by the tasks before the move."""
    from tests.support.ports import free_port
    from tests.ui.conftest import api_server_env, start_api_server, start_mlflow_ui, stop, wait_for_http

    port, mlflow_port = free_port(), free_port()
    base, mlflow_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mlflow_port}"
    assert (base, mlflow_url) != (ui_server.base, ui_server.mlflow_url)
    mlflow = start_mlflow_ui(ui_server.home, mlflow_port, "mlflow-moved.log")
    api = start_api_server(ui_server.home, api_server_env(ui_server.home, base, mlflow_url), port,
                           "api-server-moved.log")
    try:
        wait_for_http(f"{mlflow_url}/health", mlflow, ui_server.home / "mlflow-moved.log", "moved mlflow server")
        page = signed_in(browser, base)
        yield page, base, mlflow_url
        page.context.close()
    finally:
        stop(api)
        stop(mlflow, group=True)


def test_every_extra_link_still_opens_after_the_ui_moved_to_other_ports(moved, loop):
    page, base, mlflow_url = moved
    for row in LINKS:
        shown = open_extra_link(page, base, mlflow_url, loop, row)
        if shown is not page:
            shown.close()
