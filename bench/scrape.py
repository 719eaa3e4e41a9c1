"""Scraping benchmark: our engine vs the politeness ceiling, vs Scrapy, and re-crawl bytes.

    .venv/bin/python bench/scrape.py [--pages 400] [--latency 0.1] [--concurrency 8]

Serves a local listings site (robots.txt, sitemap.xml, ETag/304) from a separate process on
127.0.0.1, every response delayed by ``--latency`` seconds, and prints in one run:

- pages/s of our engine vs the ceiling ``concurrency / latency``      (bar >= 0.95x)
- pages/s of our engine vs Scrapy at the same per-host concurrency    (bar >= 1.0x)
- bytes the server sent for a re-crawl of unchanged pages vs the first crawl  (bar <= 5%)

Both crawlers discover the pages through the sitemap, obey robots.txt and extract the same fields.
Scrapy runs in a subprocess; its time runs from spider_opened to its last parsed page, so its idle
shutdown is not counted against it. Our time is the whole crawl() call, client setup included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

RECORDS_PER_PAGE = 20


def render(n: int) -> bytes:
    items = "".join(
        f'<article class="listing" data-id="p{n:05d}-{i:02d}"><span class="city">City {i % 7}</span>'
        f'<span class="area">{40 + (n * 7 + i) % 90} m²</span><span class="rooms">{1 + i % 5}</span>'
        f'<span class="price">€ {100_000 + n * 37 + i * 1_000:,}</span><p>{"Lorem ipsum dolor sit amet. " * 8}</p>'
        f"</article>" for i in range(RECORDS_PER_PAGE))
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Listings {n}</title></head>'
            f'<body><main>{items}</main><a class="next" href="/listings/{n + 1}">next</a></body></html>').encode()


def serve(port_pipe, pages: int, latency: float, counter) -> None:
    """The site, in its own process so it never competes with a crawler for the GIL.

    A minimal asyncio HTTP/1.1 keep-alive server: a thread per connection (http.server) adds a few
    ms of scheduling noise per request, which would be measured as the crawler's.
    """
    import asyncio

    bodies = {f"/listings/{n}": render(n) for n in range(1, pages + 1)}
    etags = {path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in bodies.items()}

    def respond(path: str, headers: dict[str, str]) -> bytes:
        status, ctype, body, extra = 404, "text/plain", b"not found", ""
        if path == "/robots.txt":
            status, body = 200, b"User-agent: *\nDisallow: /admin/\n"
        elif path == "/sitemap.xml":
            host = headers.get("host", "")
            locs = "".join(f"<url><loc>http://{host}/listings/{n}</loc></url>" for n in range(1, pages + 1))
            status, ctype = 200, "application/xml"
            body = (f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}'
                    "</urlset>").encode()
        elif path in bodies:
            status, ctype, body, extra = 200, "text/html; charset=utf-8", bodies[path], f"ETag: {etags[path]}\r\n"
            if headers.get("if-none-match") == etags[path]:
                status, body = 304, b""
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        return head.encode() + body

    async def connection(reader, writer) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                line, *lines = request.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
                await asyncio.sleep(latency)
                data = respond(line.split(" ")[1], headers)
                writer.write(data)  # one send: no Nagle / delayed-ACK stall between head and body
                counter.value += len(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", 0, backlog=256)
        port_pipe.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def our_source(base: str, concurrency: int):
    from mlops_pack.core.spec import SourceSpec

    return SourceSpec.model_validate({
        "start_urls": [f"{base}/listings/1"], "sitemaps": [f"{base}/sitemap.xml"], "allowed_hosts": [base[7:]],
        "record_selector": "article.listing", "key": "id", "max_pages": 100_000,
        "max_concurrency_per_host": concurrency, "number_affixes": ["€", "m²"],
        "fields": {"id": {"selector": "::attr(data-id)"}, "city": {"selector": ".city::text"},
                   "area": {"selector": ".area::text", "type": "number"},
                   "rooms": {"selector": ".rooms::text", "type": "integer"},
                   "price": {"selector": ".price::text", "type": "number"}},
    })


SCRAPY_SCRIPT = textwrap.dedent('''
    import json, re, sys, time
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.spiders import SitemapSpider

    base, concurrency = sys.argv[1], int(sys.argv[2])
    marks = {"pages": 0, "items": 0}
    NUM = re.compile(r"-?\\d[\\d,\\s]*(?:\\.\\d+)?")

    def number(text):
        m = NUM.search(text or "")
        return float(re.sub(r"[,\\s]", "", m.group())) if m else None

    class Bench(SitemapSpider):
        name = "bench"
        sitemap_urls = [base + "/sitemap.xml"]

        def parse(self, response):
            marks["pages"] += 1
            marks["last"] = time.monotonic()
            for node in response.css("article.listing"):
                marks["items"] += 1
                yield {"id": node.css("::attr(data-id)").get(), "city": node.css(".city::text").get(),
                       "area": number(node.css(".area::text").get()),
                       "rooms": int(number(node.css(".rooms::text").get())),
                       "price": number(node.css(".price::text").get())}

    process = CrawlerProcess(settings={
        "CONCURRENT_REQUESTS": concurrency, "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_DELAY": 0, "ROBOTSTXT_OBEY": True, "COOKIES_ENABLED": False, "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False, "AUTOTHROTTLE_ENABLED": False, "HTTPCACHE_ENABLED": False,
        "RETRY_ENABLED": True, "USER_AGENT": "bench-scrapy",
    })
    crawler = process.create_crawler(Bench)
    crawler.signals.connect(lambda spider: marks.__setitem__("open", time.monotonic()), signals.spider_opened, weak=False)
    process.crawl(crawler)
    process.start()
    print(json.dumps({"pages": marks["pages"], "items": marks["items"],
                      "seconds": marks["last"] - marks["open"]}))
''')


def run_scrapy(base: str, concurrency: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(SCRAPY_SCRIPT)
    out = subprocess.run([sys.executable, fh.name, base, str(concurrency)], capture_output=True, text=True,
                         timeout=600)
    Path(fh.name).unlink()
    if out.returncode:
        raise SystemExit(f"scrapy failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=800)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, default=8, help="per-host concurrency, both crawlers")
    args = parser.parse_args()

    # Import the engine's libraries before timing, as Scrapy's time starts after its imports too
    # (the engine imports them lazily, on its first crawl; time to first request is printed apart).
    import aiohttp, charset_normalizer, lxml.etree, parsel, protego, tenacity  # noqa: E401, F401, I001
    from mlops_pack.core.scrape import crawl

    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0, lock=False)  # one writer: the server loop
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve, args=(child, args.pages, args.latency, counter), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{parent.recv()}"
    try:
        source = our_source(base, args.concurrency)
        started = time.monotonic()
        first = crawl(source)
        ours_s = time.monotonic() - started
        first_bytes, counter.value = counter.value, 0
        second = crawl(source, state=json.loads(json.dumps(first.state)))
        second_bytes, counter.value = counter.value, 0
        scrapy = run_scrapy(base, args.concurrency)
    finally:
        server.terminate()

    pages = first.stats["pages_fetched"]
    assert pages == args.pages and len(first.records) == args.pages * RECORDS_PER_PAGE, first.stats
    assert second.stats["not_modified"] == args.pages and second.records == first.records, second.stats
    assert scrapy["pages"] == args.pages, scrapy
    ours, ceiling, theirs = pages / ours_s, args.concurrency / args.latency, scrapy["pages"] / scrapy["seconds"]
    share = second_bytes / first_bytes
    print(f"site: {args.pages} pages x {RECORDS_PER_PAGE} records, latency {args.latency * 1000:.0f} ms, "
          f"per-host concurrency {args.concurrency}")
    print(f"ours      {ours:8.1f} pages/s  ({pages} pages in {ours_s:.2f} s, {first.stats['requests']} requests)")
    print(f"ceiling   {ceiling:8.1f} pages/s  -> ours/ceiling = {ours / ceiling:.3f}  (bar >= 0.95)")
    print(f"scrapy    {theirs:8.1f} pages/s  -> ours/scrapy  = {ours / theirs:.3f}  (bar >= 1.0)")
    print(f"re-crawl  {second_bytes:,} B vs first {first_bytes:,} B -> {share:.2%}  (bar <= 5%), "
          f"{second.stats['not_modified']} x 304")
    ok = ours / ceiling >= 0.95 and ours / theirs >= 1.0 and share <= 0.05
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
