"""HTTP receivers on 127.0.0.1: what the pack's alerts post (behind an Airflow connection), and what any
other client posts (OpenLineage events), as received."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def http_receiver():
    """Yield (base URL, the list of (path, Authorization header, JSON body) each POST appends)."""
    received: list = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


@contextlib.contextmanager
def webhook_receiver(conn_id: str, password: str = "hook-token"):
    """Yield the list of (path, Authorization header, JSON body) each POST appends, while connection
    ``conn_id`` (an environment connection) points at the receiver."""
    with http_receiver() as (url, received):
        variable = f"AIRFLOW_CONN_{conn_id.upper()}"
        os.environ[variable] = json.dumps(
            {"conn_type": "http", "host": f"{url}/services/T0/B0/xyz", "password": password})
        try:
            yield received
        finally:
            os.environ.pop(variable, None)
