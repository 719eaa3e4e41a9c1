"""Serve the demo listings site on 127.0.0.1: paginated HTML, robots.txt and a small admin endpoint.

    python include/demo_site/server.py --port 8765 --day 1

``POST /admin/state`` with JSON ``{"day": 3, "shift": true, "corrupt": false}`` moves the site to
another day, which is how the demo simulates time passing and the market shifting.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

try:
    from .generator import SiteState, day_records
except ImportError:  # run as a script
    from generator import SiteState, day_records  # type: ignore[no-redef]

ROBOTS = "User-agent: *\nDisallow: /admin/\nAllow: /\n"


def render_page(state: SiteState, records: list[dict], page: int) -> str:
    """One listings page; corrupt days garble the area column and break some pages' markup."""
    start = (page - 1) * state.page_size
    rows = records[start:start + state.page_size]
    items = []
    for n, r in enumerate(rows):
        area = f"{r['area_m2']} m²"
        if state.corrupt:
            area = ["n/a", "###", "ask agent", "??"][n % 4]
        items.append(
            f'<article class="listing" data-id="{r["listing_id"]}">'
            f'<h2 class="title">{html.escape(r["city"])} flat, {r["rooms"]} rooms</h2>'
            f'<time datetime="{r["listed_on"]}">{r["listed_on"]}</time>'
            f'<span class="city">{html.escape(r["city"])}</span>'
            f'<span class="condition">{r["condition"]}</span>'
            f'<span class="area">{area}</span><span class="rooms">{r["rooms"]}</span>'
            f'<span class="age">{r["age_years"]} years</span>'
            f'<span class="distance">{r["distance_km"]} km</span>'
            f'<span class="price">€ {int(r["price"]):,}</span></article>'
        )
    body = "\n".join(items)
    if state.corrupt and page % 3 == 0:
        body = "<article class=\"listing\" data-id=<<<broken " + body[: len(body) // 3]  # truncated markup
    nav = f'<a class="next" href="/listings?page={page + 1}">Next</a>' if page < state.pages else ""
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Listings day {state.day} page {page}"
            f"</title></head><body><main>{body}</main><nav>{nav}</nav></body></html>")


class DemoSite:
    """The site's state and a cached copy of the current day's records."""

    def __init__(self, state: SiteState):
        self._lock = threading.Lock()
        self.set_state(state)

    def set_state(self, state: SiteState) -> None:
        records = day_records(state)
        with self._lock:
            self.state, self.records = state, records

    def snapshot(self) -> tuple[SiteState, list[dict]]:
        with self._lock:
            return self.state, self.records


def listings_page(state: SiteState, records: list[dict], query: str) -> tuple[int, str]:
    """(status, body) of a listings page request."""
    try:
        page = int(parse_qs(query).get("page", ["1"])[0])
    except ValueError:
        return 400, "bad page"
    if not 1 <= page <= state.pages:
        return 404, "no such page"
    return 200, render_page(state, records, page)


def make_handler(site: DemoSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test and demo output quiet
            pass

        def _send(self, status: int, body: str, ctype: str = "text/html; charset=utf-8") -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            state, records = site.snapshot()
            if url.path == "/robots.txt":
                return self._send(200, ROBOTS, "text/plain")
            if url.path == "/admin/state":
                return self._send(200, json.dumps(dataclasses.asdict(state)), "application/json")
            if url.path in ("/", "/listings"):
                return self._send(*listings_page(state, records, url.query))
            return self._send(404, "not found")

        def do_POST(self):
            if urlparse(self.path).path != "/admin/state":
                return self._send(404, "not found")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                changes = json.loads(self.rfile.read(length) or b"{}")
                state = dataclasses.replace(site.snapshot()[0], **changes)
            except (ValueError, TypeError) as exc:
                return self._send(400, f"bad state: {exc}", "text/plain")
            site.set_state(state)
            return self._send(200, json.dumps(dataclasses.asdict(state)), "application/json")

    return Handler


def serve(port: int = 0, state: SiteState | None = None,
          host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, DemoSite]:
    """Start the site in a daemon thread; returns the server (``server_address`` has the port)."""
    site = DemoSite(state or SiteState())
    server = ThreadingHTTPServer((host, port), make_handler(site))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-site").start()
    return server, site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container (docker-compose.yml)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--day", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    server, _ = serve(args.port, SiteState(seed=args.seed, day=args.day, records_per_day=args.records), args.host)
    print(f"demo site on http://{args.host}:{server.server_address[1]}/listings", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
