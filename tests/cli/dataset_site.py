"""A small HTML site on 127.0.0.1 serving scikit-learn's bundled datasets as paginated tables, one
"day" at a time, and the pipeline specs a newcomer would write for it.

Each day shows every row of the dataset once (ids unique per day), with a little noise; a shifted
day scales every feature by 1.6, so a model trained before the shift misjudges it and the drift
monitor sees it.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BASE_DATE = dt.date(2026, 11, 1)
PAGE_SIZE = 50


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def dataset(name: str, features: int | None = None) -> tuple[list[str], list[list[float]], list[str]]:
    """(feature names, rows, labels) of a bundled scikit-learn dataset (``wine``, ``iris``, ``breast_cancer``)."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    names = [_safe(n) for n in bunch.feature_names][:features]
    rows = [list(map(float, r[: len(names)])) for r in bunch.data]
    labels = [str(bunch.target_names[t]) for t in bunch.target]
    return names, rows, labels


@dataclass
class DatasetDay:
    name: str
    features: list[str]
    records: list[dict]


def day_records(name: str, day: int, shift: bool, features: int | None = None) -> DatasetDay:
    import random

    names, rows, labels = dataset(name, features)
    rng = random.Random(f"{name}-{day}-{shift}")
    order = list(range(len(rows)))
    rng.shuffle(order)  # the bundled datasets are sorted by class
    records = []
    for n, i in enumerate(order):
        values = [v * rng.gauss(1.0, 0.02) * (1.6 if shift else 1.0) for v in rows[i]]
        records.append({"id": f"{name[:2]}-{day:02d}-{n:04d}", "day": (BASE_DATE + dt.timedelta(days=day - 1)).isoformat(),
                        **{f: round(v, 5) for f, v in zip(names, values, strict=True)}, "label": labels[i]})
    return DatasetDay(name, names, records)


@dataclass
class Site:
    """Which day each dataset shows; ``set_day`` moves one."""

    features: dict[str, int | None]
    days: dict[str, DatasetDay] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_day(self, name: str, day: int, shift: bool = False) -> None:
        records = day_records(name, day, shift, self.features[name])
        with self.lock:
            self.days[name] = records

    def page(self, name: str, page: int) -> tuple[int, str]:
        with self.lock:
            current = self.days.get(name)
        if current is None:
            return 404, "no such dataset"
        pages = -(-len(current.records) // PAGE_SIZE)
        if not 1 <= page <= pages:
            return 404, "no such page"
        rows = []
        for r in current.records[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]:
            cells = "".join(f'<td class="{f}">{r[f]}</td>' for f in current.features)
            rows.append(f'<tr class="row" data-id="{r["id"]}"><td class="day"><time datetime="{r["day"]}">'
                        f'{r["day"]}</time></td>{cells}<td class="label">{html.escape(r["label"])}</td></tr>')
        nav = f'<a class="next" href="/{name}?page={page + 1}">next</a>' if page < pages else ""
        return 200, (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{name} page {page}</title></head>"
                     f"<body><table>{''.join(rows)}</table><nav>{nav}</nav></body></html>")


def serve(site: Site) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/robots.txt":
                status, body, ctype = 200, "User-agent: *\nAllow: /\n", "text/plain"
            else:
                try:
                    page = int(parse_qs(url.query).get("page", ["1"])[0])
                except ValueError:
                    page = 0
                status, body = site.page(url.path.strip("/"), page)
                ctype = "text/html; charset=utf-8"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="dataset-site").start()
    return server


def spec_yaml(name: str, features: list[str], host: str, *, metrics: str, retrain: str, stratify: bool = False,
              min_holdout_rows: int = 30) -> str:
    """The pipeline spec a newcomer writes for one dataset of the site (docs/tutorial.md has the same shape)."""
    fields = "\n".join(f"    {f}: {{selector: 'td.{f}::text', type: number}}" for f in features)
    return f"""name: {name}
description: scikit-learn's {name} dataset scraped from a local site; predicts the label.
source:
  start_urls: ["http://{host}/{name}?page=1"]
  allowed_hosts: ["{host}"]
  record_selector: tr.row
  next_page_selector: "a.next::attr(href)"
  key: id
  fields:
    id: {{selector: "::attr(data-id)"}}
    day: {{selector: "td.day time::attr(datetime)", type: date}}
    label: {{selector: "td.label::text"}}
{fields}
validation:
  expectations:
    - type: expect_table_row_count_to_be_between
      kwargs: {{min_value: 100}}
    - type: expect_column_values_to_not_be_null
      kwargs: {{column: label}}
model:
  task: classification
  target: label
  order_by: day
  features:
    numeric: [{", ".join(features)}]
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 60, random_state: 0}}
  stratify: {str(stratify).lower()}
retrain:
  triggers: {retrain}
promotion:
  metrics:
{metrics}
  min_holdout_rows: {min_holdout_rows}
  bootstrap_samples: 300
drift:
  share_threshold: 0.5
partition:
  column: day
schedule:
  ingest: null
"""
