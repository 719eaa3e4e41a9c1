"""A hostile website on 127.0.0.1 for the ingestion tests: every way a real site misbehaves.

Each response is written in one send (no Nagle/delayed-ACK stalls), and every request is recorded
(path and headers), so tests can assert what was fetched and what never was.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PADDING = "# " + "x" * 98 + "\n"  # one 100-byte comment line of robots.txt


def robots_txt(mode: str) -> str | None:
    """The robots.txt body of a ``site.robots`` mode, or None when the mode is not a body."""
    if mode == "ok":
        return "User-agent: *\nDisallow: /private/\n"
    if mode.startswith("delay:"):  # e.g. delay:3600 or delay:1e308
        return f"User-agent: *\nDisallow: /private/\nCrawl-delay: {mode.split(':', 1)[1]}\n"
    if mode == "big":  # 600 KB: over a 100 KB body cap, rules first, a late rule past 500 KiB
        return "User-agent: *\nDisallow: /private/\n" + PADDING * 6000 + "Disallow: /page/\n"
    return None


def deep_page(depth: int) -> str:
    """A record, ``depth`` nested divs, then another record: libxml2 stops at its depth limit."""
    first = '<div class="item" data-id="before"><span class="price">1</span></div>'
    last = '<div class="item" data-id="after"><span class="price">2</span></div>'
    return f"<html><body>{first}{'<div>' * depth}{'</div>' * depth}{last}</body></html>"


def entity_bomb_sitemap(base: str) -> str:
    """Billion laughs between two <url> entries: lxml's amplification limit stops the parse."""
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY b{i} "{("&a;" if i == 0 else f"&b{i - 1};") * 10}">' for i in range(9))
    return (f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]><urlset>'
            f"<url><loc>{base}/page/3</loc></url><url><loc>{base}/&b8;</loc></url>"
            f"<url><loc>{base}/slow?n=lost</loc></url></urlset>")


def page(items: list[tuple[str, str]], next_href: str | None = None, extra: str = "") -> str:
    body = "".join(f'<div class="item" data-id="{i}"><span class="price">{p}</span></div>' for i, p in items)
    nav = f'<a class="next" href="{next_href}">next</a>' if next_href else ""
    return f"<html><head><title>t</title></head><body>{body}{extra}{nav}</body></html>"


class HostileSite:
    """State shared with the handler: the robots mode, the ETag version, what was requested."""

    def __init__(self, robots: str = "ok", pages: int = 3):
        self.robots, self.pages, self.version = robots, pages, 1
        self.hits: list[tuple[str, dict[str, str]]] = []
        self.counts: dict[str, int] = {}
        self.hit_times: dict[str, list[float]] = {}
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def paths(self) -> list[str]:
        return [p for p, _ in self.hits]

    def start(self) -> HostileSite:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_handler(site: HostileSite):  # noqa: C901 - one route table, read top to bottom
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status: int, body: bytes | str = b"", ctype: str = "text/html; charset=utf-8",
                 headers: dict[str, str] | None = None, length: int | None = None) -> None:
            data = body.encode() if isinstance(body, str) else body
            head = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}",
                    f"Content-Length: {len(data) if length is None else length}"]
            head += [f"{k}: {v}" for k, v in (headers or {}).items()]
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)

        def do_GET(self):  # noqa: C901
            url = urlparse(self.path)
            with site.lock:
                site.hits.append((self.path, dict(self.headers)))
                site.counts[url.path] = site.counts.get(url.path, 0) + 1
                count = site.counts[url.path]
                site.hit_times.setdefault(url.path, []).append(time.monotonic())
                site.inflight += 1
                site.max_inflight = max(site.max_inflight, site.inflight)
            try:
                self.route(url, count)
            finally:
                with site.lock:
                    site.inflight -= 1

        def route(self, url, count):  # noqa: C901
            path, query = url.path, parse_qs(url.query)
            if path == "/robots.txt":
                return self.robots(query)
            if path == "/trickle":  # a valid start, then one byte every 0.3 s: no read timeout ever fires
                return self.trickle()
            if path == "/punycode":  # ~1 MB declaring a codec whose decoder is quadratic
                filler = "<p>" + "a-" * 500_000 + "</p>"
                return self.send(200, page([("pc1", "1")], extra=filler), "text/html; charset=punycode")
            if path == "/deep":
                return self.send(200, deep_page(int(query.get("d", ["10000"])[0])))
            if path == "/values":  # one record per hostile value; ?v= repeated
                return self.send(200, page([(f"v{i}", v) for i, v in enumerate(query.get("v", []))]))
            if path == "/sitemap-bomb.xml":
                return self.send(200, entity_bomb_sitemap(site.base), "application/xml")
            if path.startswith("/page/"):
                n = int(path.rsplit("/", 1)[1])
                nxt = f"/page/{n + 1}" if n < site.pages else None
                return self.send(200, page([(f"p{n}-{i}", str(100 * n + i)) for i in range(3)], nxt))
            if path == "/private/secret":
                return self.send(200, page([("secret", "1")]))
            if path == "/slow":
                time.sleep(float(query.get("s", ["0.1"])[0]))
                return self.send(200, page([(f"slow{query.get('n', ['0'])[0]}", "1")]))
            if path == "/ratelimited":
                if count == 1:
                    return self.send(429, "slow down", "text/plain", {"Retry-After": "1"})
                return self.send(200, page([("rl1", "7")]))
            if path == "/stall":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<html>")
                time.sleep(3)
                return None
            if path == "/big":  # no Content-Length: the cap must hold while streaming
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
                for _ in range(40):
                    self.wfile.write(b"<p>" + b"x" * 50_000 + b"</p>")
                self.close_connection = True
                return None
            if path == "/loop":
                n = int(query.get("n", ["0"])[0])
                return self.send(302, "", headers={"Location": f"/loop?n={n + 1}"})
            if path == "/to-metadata":
                return self.send(302, "", headers={"Location": "http://169.254.169.254/latest/meta-data/"})
            if path == "/to-private":
                return self.send(302, "", headers={"Location": f"http://localhost:{site.port}/page/1"})
            if path == "/bad-utf8":
                html = page([("u1", "1"), ("u2", "2")]).encode().replace(b"<title>t", b"<title>caf\xe9 \xff\xfe")
                html = html.replace(b'data-id="u2"', b'data-id="u2\xff"')
                return self.send(200, html)
            if path == "/latin1":  # no charset declared, not UTF-8: detection, not mojibake
                return self.send(200, page([("l1", "1")], extra="<p>Caf\xe9 cr\xe8me br\xfbl\xe9e \xe0 Paris</p>")
                                 .encode("latin-1"), "text/html")
            if path == "/malformed":
                return self.send(200, '<html><body><div class="item" data-id="m1"><span class="price">5</span>'
                                      '<div class="item" data-id="m2"><span class="price">oops<<</td></table>'
                                      '<div class="item" data-id=><span class="price">3')
            if path == "/empty":
                return self.send(200, "<html><body><p>maintenance</p></body></html>")
            if path == "/dupes":
                return self.send(200, page([("d1", "1"), ("d1", "1"), ("d2", "2"), ("d2", "999")]))
            if path == "/json":
                return self.send(200, '{"items": []}', "application/json")
            if path == "/etag":
                etag = f'"v{site.version}"'
                if self.headers.get("If-None-Match") == etag:
                    return self.send(304, "", headers={"ETag": etag})
                return self.send(200, page([(f"e{site.version}", str(site.version))]), headers={"ETag": etag})
            if path == "/sitemap.xml":
                locs = "".join(f"<url><loc>{site.base}/slow?n={i}&amp;s=0.1</loc></url>" for i in range(12))
                return self.send(200, f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                                      f'sitemap/0.9">{locs}</urlset>', "application/xml")
            return self.send(404, "not found", "text/plain")

        def robots(self, query):
            if site.robots == "5xx":
                return self.send(503, "down", "text/plain")
            if site.robots == "404":
                return self.send(404, "no robots", "text/plain")
            if site.robots == "redirect-loop":  # RFC 9309: past five redirects, "unavailable"
                n = int(query.get("n", ["0"])[0])
                return self.send(302, "", headers={"Location": f"/robots.txt?n={n + 1}"})
            if site.robots == "redirect-metadata":
                return self.send(302, "", headers={"Location": "http://169.254.169.254/robots.txt"})
            return self.send(200, robots_txt(site.robots), "text/plain")

        def trickle(self):
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html>")
            try:
                for _ in range(200):
                    time.sleep(0.3)
                    self.wfile.write(b" ")
            except OSError:
                pass  # the client gave up: that is the point
            self.close_connection = True

    return Handler
