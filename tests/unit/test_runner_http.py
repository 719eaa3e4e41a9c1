"""The CLI's Airflow client asks again when a loaded api-server answers 503 (a rolled-back request)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from mlops_pack.cli.runner import BusyRetryTransport


@pytest.fixture
def busy_then_ok():
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            status = 503 if len(seen) <= 2 else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_a_503_is_asked_again_with_the_same_body(busy_then_ok):
    url, seen = busy_then_ok
    with httpx.Client(transport=BusyRetryTransport()) as client:
        assert client.post(f"{url}/api/v2/backfills", json={"dag_id": "x"}).status_code == 200
    assert seen == [b'{"dag_id":"x"}'] * 3


def test_it_gives_up_and_returns_the_503(busy_then_ok):
    url, seen = busy_then_ok
    with httpx.Client(transport=BusyRetryTransport(attempts=2)) as client:
        assert client.post(f"{url}/x", json={}).status_code == 503
    assert len(seen) == 2


@pytest.fixture
def paged_api():
    """A list endpoint that, like Airflow's api-server, caps ``limit`` at 100 and reports ``total_entries``."""
    import json
    from urllib.parse import parse_qs, urlparse

    dags = [{"dag_id": f"p{i:03d}__ingest", "is_paused": i % 2 == 0} for i in range(250)]
    asked: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            asked.append(query)
            offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 50)), 100)
            body = json.dumps({"dags": dags[offset:offset + limit], "total_entries": len(dags)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], dags, asked
    server.shutdown()


def test_every_dag_of_a_home_with_many_specs_is_seen(paged_api, tmp_path):
    """Issue 27: with 50 specs (250 DAGs) one request saw the first 100, so `wait_ready` never returned.
    (Here 250 pipelines of one DAG each.)"""
    from mlops_pack.cli.runner import Airflow

    port, dags, asked = paged_api
    airflow = Airflow(tmp_path, port, [f"p{i:03d}" for i in range(250)])
    try:
        assert airflow.get_all("/api/v2/dags", "dags") == dags
        assert [int(q["offset"]) for q in asked] == [0, 100, 200]
        served = airflow.served_dags()
        assert len(served) == 250 and served["p249__ingest"] is False and served["p248__ingest"] is True
    finally:
        airflow.http.close()
