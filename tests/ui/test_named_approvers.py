"""Named approvers on a real api-server with the simple auth manager (tests/ui/conftest.py): a promotion
approved by a named user through Airflow's HITL REST API, and a rollback triggered by another through the
REST API, record those names in the promotion records, the MLflow version tags, the model cards and the
health page; someone who is not a named approver is refused. The plugin's pages refuse a caller without a
login (a browser is sent to Airflow's login page), and serve one only on an api-server in local mode.

The pipeline runs for real (dag.test(): the demo site, GX, MLflow on SQLite) in the package's Airflow
home, so the package's api-server answers for its task instances; dag.test() keeps a run whose approval
task is parked until a response is recorded through that api-server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import HOME
from tests.support.ports import free_port
from tests.support.specs import write_dag_file, write_spec
from tests.support.waiting import wait_until
from tests.ui.conftest import PIPELINE, get, start_api_server, stop, token_of

pytestmark = pytest.mark.e2e

NAME = "approvals"


class Approver(threading.Thread):
    """Answers the approval task of the next run of ``<NAME>__train`` that asks, through the REST API:
    first as each of ``refused`` (their answers' statuses kept), then as ``user``. dag.test() runs in the
    test's thread meanwhile (its tasks install signal handlers: the main thread only)."""

    def __init__(self, base: str, admin: str, user: str, option: str, refused: tuple[str, ...] = (),
                 not_in: set[str] | None = None):
        super().__init__(daemon=True)
        self.base, self.admin, self.user, self.option, self.refused = base, admin, user, option, refused
        self.not_in = not_in or set()
        self.statuses: dict[str, int] = {}
        self.error: BaseException | None = None
        self.run_id: str | None = None

    def asking(self) -> dict | None:
        status, body, _ = get(f"{self.base}/api/v2/dags/{NAME}__train/dagRuns?order_by=-run_after", self.admin)
        runs = [r for r in json.loads(body)["dag_runs"] if r["dag_run_id"] not in self.not_in] if status == 200 else []
        for run in runs:
            status, body, _ = get(f"{self.base}/api/v2/dags/{NAME}__train/dagRuns/{run['dag_run_id']}/taskInstances/"
                                  "approve", self.admin)
            if status == 200 and json.loads(body)["state"] == "awaiting_input":
                return json.loads(body)
        return None

    def run(self) -> None:
        try:
            ti = wait_until(self.asking, f"{NAME}__train.approve awaiting input", poll=1)
            self.run_id = ti["dag_run_id"]
            url = f"{self.base}/api/v2/dags/{NAME}__train/dagRuns/{self.run_id}/taskInstances/approve/-1/hitlDetails"
            for who in (*self.refused, self.user):
                status, body, _ = get(url, token_of(self.base, who), method="PATCH",
                                      body={"chosen_options": [self.option]})
                self.statuses[who] = status
                assert who in self.refused or status == 200, (who, status, body)
        except BaseException as exc:  # noqa: BLE001 - the test's thread raises it
            self.error = exc


@dataclasses.dataclass
class Loop:
    base: str
    admin: str
    approvals: list[Approver]
    rollback_run: str


def records() -> list[dict]:
    folder = HOME / "data" / NAME / "promotions"
    return sorted((json.loads(p.read_text()) for p in folder.glob("*.json")), key=lambda r: r["decided_at"])


def train_approved_by(spec: Path, server: Any, user: str, refused: tuple[str, ...] = ()) -> Approver:
    from mlops_pack.dag_factory import build_dags

    approver = Approver(server.base, server.token, user, "Approve", refused,
                        not_in={r["run_id"] for r in records()})
    approver.start()
    run = build_dags(spec)[f"{NAME}__train"].test()
    approver.join(timeout=60)
    if approver.error:
        raise approver.error
    assert run.state == "success" and run.run_id == approver.run_id
    return approver


@pytest.fixture(scope="module")
def loop(ui_server, demo_site, airflow_db) -> Loop:
    """Day 1: a first model, approved by ana (bob, not an approver, is refused first); a shifted day 2: a
    retrained model, approved by ana; then bob rolls back to v1 with the rollback DAG, triggered through
    the REST API as bob and run by ``airflow tasks test`` in that run."""
    from mlops_pack.dag_factory import build_dags

    url, site = demo_site
    site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))
    spec = write_spec(HOME / "pipelines", url, name=NAME, **{
        "min_holdout_rows: 200": "min_holdout_rows: 50",
        "require_approval: false": "require_approval: true\n  approvers: [ana]"})
    write_dag_file(spec, NAME)
    try:
        assert build_dags(spec)[f"{NAME}__ingest"].test().state == "success"
        approvals = [train_approved_by(spec, ui_server, "ana", refused=("bob",))]
        site.set_state(dataclasses.replace(site.state, day=2, shift=True))
        assert build_dags(spec)[f"{NAME}__ingest"].test().state == "success"
        approvals.append(train_approved_by(spec, ui_server, "ana"))
    finally:
        site.set_state(dataclasses.replace(site.state, day=1, shift=False, corrupt=False))
    status, body, _ = get(f"{ui_server.base}/api/v2/dags/{NAME}__rollback/dagRuns", token_of(ui_server.base, "bob"),
                          method="POST", body={"logical_date": None, "conf": {"reason": "v2 misprices old flats"}})
    assert status == 200, body
    run_id = json.loads(body)["dag_run_id"]
    done = subprocess.run([sys.executable, "-m", "airflow", "tasks", "test", f"{NAME}__rollback", "rollback", run_id],
                          env=os.environ, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return Loop(ui_server.base, ui_server.token, approvals, run_id)


def version_tags(version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return MlflowClient(os.environ["AIRFLOW__MLOPS__MLFLOW_TRACKING_URI"]).get_model_version(NAME, version).tags


def card(version: str) -> dict:
    return json.loads((HOME / "data" / NAME / "reports" / "model_cards" / f"v{version}" / "card.json").read_text())


def test_only_a_named_approver_may_answer_and_the_answer_records_their_name(loop):
    first = loop.approvals[0]
    assert first.statuses == {"bob": 403, "ana": 200}  # bob may act on DAGs but is not a named approver
    promoted = [r for r in records() if r["decision"] == "promoted"]
    assert [(r["version"], r["approved_by"]) for r in promoted] == [("1", "ana"), ("2", "ana")]
    assert promoted[0]["run_id"] == first.run_id
    assert version_tags("2")["decided_by"] == "ana"
    assert [(d["decision"], d["approved_by"]) for d in card("2")["decisions"]] == [("promoted", "ana")]
    detail = get(f"{loop.base}/api/v2/dags/{NAME}__train/dagRuns/{first.run_id}/taskInstances/approve/-1/hitlDetails",
                 loop.admin)
    assert json.loads(detail[1])["responded_by_user"] == {"id": "ana", "name": "ana"}  # what Airflow recorded


def test_a_rollback_records_the_user_who_triggered_it(loop):
    last = records()[-1]
    assert (last["decision"], last["approved_by"], last["run_id"]) == ("rolled_back", "bob", loop.rollback_run)
    assert (last["champion_before"], last["champion_after"]) == ("2", "1")
    assert last["reason"].endswith("v2 misprices old flats")
    assert version_tags("1")["decided_by"] == "bob"
    assert [(d["decision"], d["approved_by"]) for d in card("1")["decisions"]] == [("promoted", "ana"),
                                                                                   ("rolled_back", "bob")]
    html = (HOME / "data" / NAME / "reports" / "model_cards" / "v1" / "card.html").read_text()
    assert "<td>bob</td>" in html and "<td>ana</td>" in html


def test_the_health_page_names_who_decided(loop):
    status, page, _ = get(f"{loop.base}/mlops/health/{NAME}", loop.admin)
    assert status == 200
    assert page.count("<td>ana</td>") == 2 and page.count("<td>bob</td>") == 1
    assert "Anonymous" not in page


def test_a_caller_without_a_login_is_refused_and_a_browser_sent_to_the_login_page(ui_server):
    status, body, _ = get(f"{ui_server.base}/mlops/health/{PIPELINE}")
    assert status == 401 and "log in to Airflow first" in json.loads(body)["detail"]
    status, _, headers = get(f"{ui_server.base}/mlops/health/{PIPELINE}", headers={"Accept": "text/html"})
    assert status == 307 and headers["Location"].startswith("/auth/login?next=")
    assert "%2Fmlops%2Fhealth%2F" in headers["Location"]


@pytest.fixture(scope="module")
def local_server(ui_server):
    """The same home's api-server in local mode (`--no-login`): no login, [mlops] local_mode."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**ui_server.env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
           "AIRFLOW__MLOPS__LOCAL_MODE": "True", "AIRFLOW__API__BASE_URL": base}
    proc = start_api_server(ui_server.home, env, port, "api-server-local.log")
    yield base
    stop(proc)


def test_local_mode_serves_callers_without_a_login_from_this_machine(local_server):
    status, page, _ = get(f"{local_server}/mlops/health/{PIPELINE}")
    assert status == 200 and "Current champion: <b>3</b>" in page
    assert get(f"{local_server}/mlops/files/{PIPELINE}/reports/model_cards/v3/card.html")[0] == 200
    assert get(f"{local_server}/mlops/files/{PIPELINE}/state/drift_signal.json")[0] == 404  # the other checks stay
