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
