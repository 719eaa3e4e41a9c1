"""The model health page: one pipeline's champion history, metrics, realized performance, drift,
validation and quarantine.

Everything shown comes from the pipeline's storage (``promotions/``, ``performance/``,
``reports/drift/``, ``validated/``, ``quarantine/``, ``reports/datadocs/``); every value is HTML-escaped, since some
come from scraped pages. Plots are inline SVG made here (:mod:`mlops_pack.ui.svg`).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from mlops_pack import settings
from mlops_pack.ui.svg import line_chart

STYLE = """body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}table{border-collapse:collapse;
margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left;vertical-align:top}
th{background:#f3f3f3}table{max-width:100%}td{overflow-wrap:break-word}.promoted{color:#176317}.rejected{color:#a31515}.fail{color:#a31515;font-weight:bold}
.ok{color:#176317}h2{margin-top:1.4em}.empty{color:#777}"""


def e(value: Any) -> str:
    """Escape anything for HTML text and attributes."""
    return escape("" if value is None else str(value), quote=True)


def _read_json(path: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _children(folder: Any) -> list[Any]:
    try:
        if not folder.exists():
            return []
        return sorted((c for c in folder.iterdir() if not c.name.startswith((".", "_"))), key=lambda c: c.name)
    except OSError:
        return []


def gather(pipeline: str, root: Any) -> dict[str, Any]:
    """The page's data from the pipeline's storage folder ``root`` (an ObjectStoragePath)."""
    promotions = [r for r in (_read_json(p) for p in _children(root / "promotions") if p.name.endswith(".json"))
                  if isinstance(r, dict)]
    drift = []
    for folder in _children(root / "reports" / "drift"):
        summary = _read_json(folder / "summary.json")
        if isinstance(summary, dict):
            drift.append({**summary, "key": folder.name})
    validated = [m for m in (_read_json(f / "manifest.json") for f in _children(root / "validated"))
                 if isinstance(m, dict)]
    quarantine = []
    for folder in _children(root / "quarantine"):
        result = _read_json(folder / "validation.json")
        quarantine.append({"key": folder.name, "result": result if isinstance(result, dict) else None})
    docs = {f.name for f in _children(root / "reports" / "datadocs") if (f / "index.html").exists()}
    performance = [r for r in (_read_json(f / "summary.json") for f in _children(root / "performance"))
                   if isinstance(r, dict)]
    return {"pipeline": pipeline, "promotions": promotions, "drift": drift, "validated": validated,
            "quarantine": quarantine, "docs": docs, "performance": performance}


def _file_link(pipeline: str, relative: str, text: str) -> str:
    from mlops_pack.links import files_path

    return f'<a href="{e(files_path(f"{pipeline}/{relative}"))}">{e(text)}</a>'


def _mlflow_link(model: str, version: Any) -> str:
    from mlops_pack.links import mlflow_model_path  # redirects to the MLflow UI configured when clicked

    return f'<a href="{e(mlflow_model_path(model, version))}" target="_blank">v{e(version)}</a>'


def _when(value: Any) -> str:
    """An ISO timestamp to the second (``2026-11-02T00:00:00.123+00:00`` -> ``2026-11-02 00:00:00``)."""
    text = "" if value is None else str(value)
    return text[:19].replace("T", " ") if len(text) >= 19 and text[10:11] == "T" else text


def _run_link(dag_id: Any, run_id: Any) -> str:
    """The Airflow DAG run that decided, opened in the whole window (the page may be in the UI's frame)."""
    if not dag_id or not run_id:
        return e(dag_id or "-")
    href = f"{settings.ui_base_path()}/dags/{quote(str(dag_id))}/runs/{quote(str(run_id), safe='')}"
    return f'<a href="{e(href)}" target="_top" title="{e(run_id)}">{e(dag_id)}</a>'


def _intervals(record: dict[str, Any]) -> str:
    parts = []
    for i in record.get("intervals") or []:
        if isinstance(i, dict):
            parts.append(f"{e(i.get('metric'))}: {e(_num(i.get('improvement')))} "
                         f"[{e(_num(i.get('low')))}, {e(_num(i.get('high')))}] @{e(i.get('confidence'))}")
    return "<br>".join(parts) or "-"


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def champion_section(data: dict[str, Any]) -> str:
    rows = []
    for r in data["promotions"]:
        decision = str(r.get("decision", ""))
        metrics = ", ".join(f"{e(k)}={e(_num(v))}" for k, v in (r.get("challenger_metrics") or {}).items())
        rows.append(f"<tr><td title=\"{e(r.get('decided_at'))}\">{e(_when(r.get('decided_at')))}</td>"
                    f"<td>{_mlflow_link(r.get('model', ''), r.get('version'))}"
                    f"</td><td class=\"{e(decision)}\">{e(decision)}</td><td>{e(r.get('retrain_evidence') or '-')}"
                    f"</td><td>{e(r.get('reason'))}</td>"
                    f"<td>{_intervals(r)}</td><td>{metrics}</td><td>{e(r.get('champion_before') or '-')} &rarr; "
                    f"{e(r.get('champion_after') or '-')}</td><td>{e(r.get('approved_by'))}</td>"
                    f"<td>{_run_link(r.get('dag_id'), r.get('run_id'))}</td></tr>")
    if not rows:
        return '<h2>Champion history</h2><p class="empty">No promotion decision yet.</p>'
    champion = next((r.get("champion_after") for r in reversed(data["promotions"]) if r.get("champion_after")), None)
    head = ("<tr><th>decided at</th><th>version</th><th>decision</th><th>trained because</th><th>reason</th>"
            "<th>CI of improvement</th>"
            "<th>metrics</th><th>champion</th><th>by</th><th>run</th></tr>")
    return (f"<h2>Champion history</h2><p>Current champion: <b>{e(champion or 'none')}</b></p>"
            f"<table>{head}{''.join(rows)}</table>")


def metrics_section(data: dict[str, Any]) -> str:
    by_version: dict[str, dict[str, float]] = {}
    for r in data["promotions"]:
        for k, v in (r.get("challenger_metrics") or {}).items():
            if isinstance(v, int | float):
                by_version.setdefault(str(r.get("version")), {})[k] = float(v)
    versions = sorted(by_version, key=lambda v: (len(v), v))
    names = sorted({k for m in by_version.values() for k in m})
    charts = [line_chart(f"{name} per version", [f"v{v}" for v in versions],
                         {name: [by_version[v].get(name) for v in versions]}) for name in names]
    return "<h2>Metrics per version (holdout)</h2>" + ("".join(charts) or '<p class="empty">No metrics yet.</p>')


def drift_section(data: dict[str, Any]) -> str:
    drift, pipeline = data["drift"], data["pipeline"]
    threshold = next((d.get("threshold") for d in drift if isinstance(d.get("threshold"), int | float)), None)
    chart = line_chart("drift share per report", [d["key"] for d in drift],
                       {"share": [d.get("share") if isinstance(d.get("share"), int | float) else None
                                  for d in drift]}, threshold=threshold)
    rows = "".join(_drift_row(pipeline, d) for d in drift)
    table = ("<table><tr><th>report</th><th>model version</th><th>drift share</th><th>drifted columns</th>"
             f"<th>link</th></tr>{rows}</table>") if drift else ""
    return f"<h2>Drift</h2>{chart}{table}"


def _drift_row(pipeline: str, d: dict[str, Any]) -> str:
    link = _file_link(pipeline, "reports/drift/" + str(d["key"]) + "/report.html", "report")
    columns = ", ".join(map(str, d.get("drifted_columns") or [])) or "-"
    css = "fail" if d.get("drift") else "ok"
    return (f"<tr><td>{e(d['key'])}</td><td>{e(d.get('model_version'))}</td>"
            f"<td class=\"{css}\">{e(_num(d.get('share')))}</td><td>{e(columns)}</td><td>{link}</td></tr>")


def outcomes_section(data: dict[str, Any]) -> str:
    """Realized metrics per version over the scored partitions, against each version's holdout baseline."""
    records = sorted(data.get("performance") or [], key=lambda r: str(r.get("partition")))
    if not records:
        return ""
    keys = list(dict.fromkeys(str(r.get("partition", "")).rsplit("__v", 1)[0] for r in records))
    versions = sorted({str(r.get("model_version")) for r in records}, key=lambda v: (len(v), v))
    names = list(dict.fromkeys(n for r in records for n in (r.get("baselines") or {})))
    charts = []
    for name in names:
        series: dict[str, list[float | None]] = {}
        for version in versions:
            mine = {str(r.get("partition", "")).rsplit("__v", 1)[0]: r for r in records
                    if str(r.get("model_version")) == version}
            series[f"v{version} realized"] = [_value(mine.get(k), name) for k in keys]
            baseline = next((r["baselines"].get(name) for r in mine.values() if r.get("baselines")), None)
            series[f"v{version} holdout"] = [baseline if k in mine and isinstance(baseline, int | float) else None
                                              for k in keys]
        charts.append(line_chart(f"realized {name} per partition vs holdout", keys, series))
    rows = "".join(_outcome_row(r, names, _quality_link(data["pipeline"], r)) for r in records)
    head = "".join(f"<th>{e(n)} [CI]</th>" for n in names)
    return ("<h2>Realized performance (labelled predictions)</h2>" + "".join(charts)
            + "<table><tr><th>prediction partition</th><th>version</th><th>labelled</th><th>coverage</th>"
            f"<th>label lag (median)</th>{head}<th>decay</th><th>quality report</th></tr>{rows}</table>")


def _quality_link(pipeline: str, record: dict[str, Any]) -> str:
    """A link to the record's Evidently quality report (``reports/quality/<partition>/report.html``), or '-'."""
    quality = record.get("quality_report")
    path = quality.get("path") if isinstance(quality, dict) else None
    if not isinstance(path, str) or not path.startswith("reports/quality/"):
        return "-"
    return _file_link(pipeline, path, f"report ({quality.get('sampled_rows')} rows)")


def _value(record: dict[str, Any] | None, name: str) -> float | None:
    estimate = ((record or {}).get("metrics") or {}).get(name) or {}
    value = estimate.get("value") if isinstance(estimate, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _outcome_row(r: dict[str, Any], names: list[str], report: str = "-") -> str:
    cells = []
    for name in names:
        est = (r.get("metrics") or {}).get(name)
        cells.append(f"<td>{e(_num(est.get('value')))} [{e(_num(est.get('low')))}, {e(_num(est.get('high')))}]</td>"
                     if isinstance(est, dict) else "<td>-</td>")
    lag = (r.get("label_lag_seconds") or {}).get("median")
    lag_text = f"{lag / 3600:.1f} h" if isinstance(lag, int | float) else "-"
    if r.get("status") != "ok":
        verdict, css = str(r.get("reason") or r.get("status")), "empty"
    else:
        reasons = [str(d.get("reason")) for d in r.get("decay") or [] if d.get("decay")]
        verdict, css = ("; ".join(reasons) or "none"), ("fail" if r.get("decayed") else "ok")
    coverage = r.get("coverage")
    return (f"<tr><td>{e(r.get('partition'))}</td><td>{e(r.get('model_version'))}</td>"
            f"<td>{e(r.get('labelled_rows'))} of {e(r.get('predicted_rows'))}</td>"
            f"<td>{e(f'{coverage:.0%}' if isinstance(coverage, int | float) else '-')}</td><td>{e(lag_text)}</td>"
            f"{''.join(cells)}<td class=\"{css}\">{e(verdict)}</td><td>{report}</td></tr>")


def validation_section(data: dict[str, Any]) -> str:
    pipeline, docs = data["pipeline"], data["docs"]
    validated = data["validated"]
    last = validated[-1] if validated else None
    parts = ["<h2>Validation</h2>"]
    if last:
        key = str(last.get("partition", ""))
        link = _file_link(pipeline, f"reports/datadocs/{key}/index.html", "Data Docs") if key in docs else ""
        parts.append(f"<p>Last validated partition: <b>{e(key)}</b>, {e(last.get('rows'))} rows, version "
                     f"{e(last.get('version'))}, written {e(last.get('written_at'))} {link}</p>")
    else:
        parts.append('<p class="empty">No validated partition yet.</p>')
    quarantine = data["quarantine"]
    parts.append(f"<p>Quarantined partitions: <b>{len(quarantine)}</b></p>")
    if quarantine:
        rows = []
        for q in quarantine:
            result = q["result"] or {}
            failures = "; ".join(f"{e(f.get('expectation'))}({e(f.get('column'))})"
                                 for f in result.get("failures") or [] if isinstance(f, dict))
            docs_link = (_file_link(pipeline, f"reports/datadocs/{q['key']}/index.html", "Data Docs")
                         if q["key"] in docs else "")
            rows.append(f"<tr><td>{e(q['key'])}</td><td>{e(result.get('failed'))} of {e(result.get('evaluated'))}"
                        f"</td><td>{failures or '-'}</td><td>"
                        f"{_file_link(pipeline, 'quarantine/' + str(q['key']) + '/validation.json', 'validation.json')} "
                        f"{docs_link}</td></tr>")
        parts.append("<table><tr><th>partition</th><th>failed</th><th>expectations</th><th>links</th></tr>"
                     f"{''.join(rows)}</table>")
    return "".join(parts)


def render(data: dict[str, Any]) -> str:
    name = data["pipeline"]
    body = "".join(section(data) for section in (champion_section, metrics_section, outcomes_section,
                                                 drift_section, validation_section))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Model health: {e(name)}</title>"
            f"<style>{STYLE}</style></head><body><h1>Model health: {e(name)}</h1>{body}</body></html>")


def render_index(pipelines: list[str]) -> str:
    base = settings.ui_base_path() + settings.UI_PREFIX
    items = "".join(f'<li><a href="{e(base)}/health/{e(p)}">{e(p)}</a></li>' for p in pipelines)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Model health</title><style>{STYLE}</style>"
            f"</head><body><h1>Model health</h1><ul>{items or '<li>No pipeline yet.</li>'}</ul></body></html>")
