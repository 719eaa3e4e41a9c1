"""A day/month/year table for the typing tests: scikit-learn's diabetes data plus a ``clinic`` category
and a ``visit_date`` written dd/mm/yyyy, as a user brings it as CSV, JSON lines or web pages."""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

# Both dates are read day first: 03/12/2026 is 3 December (month-first guessing made it 12 March).
DATES = {"03/12/2026": "2026-12-03", "14/11/2026": "2026-11-14"}
NUMBERS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]
PAGE_ROWS = 100


def diabetes_table(dates: list[str] | None = None):
    """442 patients: key, clinic, dd/mm/yyyy visit date (alternating ``dates``) and the diabetes numbers,
    rounded to 6 decimals so text and binary formats hold the same values."""
    import pandas as pd
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"}).round(6)
    dates = dates or list(DATES)
    table = pd.DataFrame({"patient_id": [f"p{i:04d}" for i in range(len(data))],
                          "clinic": [("north", "south", "east")[i % 3] for i in range(len(data))],
                          "visit_date": [dates[i % len(dates)] for i in range(len(data))]})
    return pd.concat([table, data[NUMBERS]], axis=1)


def spec_file(folder: Path, name: str, source: dict[str, Any]) -> Path:
    """A pipeline spec for the table with ``source`` (fields filled in), partitioned by visit date."""
    fields = {"patient_id": {"type": "string"}, "clinic": {"type": "string"}, "visit_date": {"type": "date"},
              **{n: {"type": "number"} for n in NUMBERS}}
    if source.get("kind") in (None, "scrape"):
        fields = {n: {**f, "selector": f"td.{n}::text"} for n, f in fields.items()}
    spec = {"name": name, "source": {"key": "patient_id", "fields": fields, **source},
            "validation": {"expectations": [
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "patient_id"}},
                {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}}]},
            "model": {"target": "progression", "features": {"numeric": ["bmi", "bp", "s5"], "categorical": ["clinic"]},
                      "estimator": "sklearn.linear_model.Ridge"},
            "partition": {"column": "visit_date"}, "schedule": {"ingest": None}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def pages(table) -> dict[str, str]:
    """The table as listing pages (``/page/1`` ...), each linking to the next, numbers as 6-decimal text."""
    chunks = [table.iloc[i:i + PAGE_ROWS] for i in range(0, len(table), PAGE_ROWS)]
    out = {}
    for number, chunk in enumerate(chunks, start=1):
        rows = "".join("<tr class='row'>" + "".join(
            f"<td class='{c}'>{html.escape(v if isinstance(v, str) else f'{v:.6f}')}</td>" for c, v in row.items())
            + "</tr>" for row in chunk.to_dict(orient="records"))
        link = f"<a class='next' href='/page/{number + 1}'>next</a>" if number < len(chunks) else ""
        out[f"/page/{number}"] = f"<html><body><table>{rows}</table>{link}</body></html>"
    return out


class Site:
    """The pages on a free loopback port (a thread), with a robots.txt allowing everything."""

    def __init__(self, table):
        self.pages = {**pages(table), "/robots.txt": "User-agent: *\nAllow: /\n"}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = site.pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                kind = "text/plain" if self.path.endswith(".txt") else "text/html; charset=utf-8"
                self.send_header("Content-Type", kind)
                data = (body or "not found").encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def source(self, **options: Any) -> dict[str, Any]:
        return {"start_urls": [f"http://{self.host}/page/1"], "allowed_hosts": [self.host], "record_selector": "tr.row",
                "next_page_selector": "a.next::attr(href)", "max_retries": 0, **options}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
