"""The model health page: one pipeline's champion history, the params that won a search, the gate's
paired comparisons, realized performance, drift (each version against its own reference), validation and quarantine.

Everything shown comes from the pipeline's storage (``promotions/``, ``performance/``,
``reports/drift/``, ``validated/``, ``quarantine/``, ``reports/datadocs/``, ``reports/model_cards/``); every value is HTML-escaped, since some
come from scraped pages. Plots are inline SVG made here (:mod:`mlops_pack.ui.svg`).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from mlops_pack import settings
from mlops_pack.ui.svg import line_chart, paired_chart

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
    cards = {f.name.removeprefix("v") for f in _children(root / "reports" / "model_cards") if (f / "card.html").exists()}
    return {"pipeline": pipeline, "promotions": promotions, "drift": drift, "validated": validated,
            "quarantine": quarantine, "docs": docs, "performance": performance, "cards": cards}


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


def _card_link(data: dict[str, Any], version: Any) -> str:
    """A link to the version's model card (core/model_card.py), or '-' before it has one."""
    if str(version) not in data.get("cards", ()):
        return "-"
    return _file_link(data["pipeline"], f"reports/model_cards/v{version}/card.html", "card")


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
                    f"<td>{_run_link(r.get('dag_id'), r.get('run_id'))}</td>"
                    f"<td>{_card_link(data, r.get('version'))}</td></tr>")
    if not rows:
        return '<h2>Champion history</h2><p class="empty">No promotion decision yet.</p>'
    champion = next((r.get("champion_after") for r in reversed(data["promotions"]) if r.get("champion_after")), None)
    head = ("<tr><th>decided at</th><th>version</th><th>decision</th><th>trained because</th><th>reason</th>"
            "<th>CI of improvement</th>"
            "<th>metrics</th><th>champion</th><th>by</th><th>run</th><th>model card</th></tr>")
    return (f"<h2>Champion history</h2><p>Current champion: <b>{e(champion or 'none')}</b></p>"
            f"<table>{head}{''.join(rows)}</table>")


def search_section(data: dict[str, Any]) -> str:
    """Per version that came from a hyperparameter search (``model.search``), the params that won, with the
    search's method, trial count, metric and the winner's cross-validated score, and its MLflow run."""
    from mlops_pack.links import mlflow_run_path

    seen, rows = set(), []
    for r in data["promotions"]:
        search = r.get("search")
        if not isinstance(search, dict) or (r.get("model"), r.get("version")) in seen:
            continue
        seen.add((r.get("model"), r.get("version")))
        params = search.get("best_params")
        won = ("<br>".join(f"{e(k)} = {e(_num(v))}" for k, v in sorted(params.items(), key=lambda kv: str(kv[0])))
               if isinstance(params, dict) else e(params))
        failed = f" ({e(search.get('failed'))} failed)" if search.get("failed") not in (None, 0, "0") else ""
        run = (f'<a href="{e(mlflow_run_path(search.get("experiment_id"), search.get("run_id")))}" target="_blank">'
               f"trials</a>" if search.get("experiment_id") and search.get("run_id") else e(search.get("run_id")))
        rows.append(f"<tr><td>{_mlflow_link(r.get('model', ''), r.get('version'))}</td><td>{won or '-'}</td>"
                    f"<td>{e(search.get('method'))}</td><td>{e(search.get('trials'))}{failed}</td>"
                    f"<td>{e(search.get('metric'))}</td><td>{e(_num(search.get('cv_score')))}</td><td>{run}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Hyperparameter search</h2><p>Versions refit from the best trial of a search; the score is the "
            "winner's mean over the cross-validation folds of its training rows (never the holdout).</p>"
            "<table><tr><th>version</th><th>params that won</th><th>method</th><th>trials</th><th>metric</th>"
            f"<th>CV score</th><th>search run</th></tr>{''.join(rows)}</table>")


def _paired(r: dict[str, Any]) -> bool:
    """Did this decision score a challenger and a champion on the same rows?"""
    return isinstance(r.get("champion_metrics"), dict) and isinstance(r.get("challenger_metrics"), dict)


def _rows_used(r: dict[str, Any]) -> Any:
    holdout = r.get("holdout") if isinstance(r.get("holdout"), dict) else {}
    return holdout.get("rows_used", r.get("holdout_rows"))


def _value_ci(value: Any, ci: Any) -> str:
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return f"{e(_num(value))} [{e(_num(ci[0]))}, {e(_num(ci[1]))}]"
    return e(_num(value)) if value is not None else "-"


def comparison_section(data: dict[str, Any]) -> str:
    """Per decision, the gate's paired comparison: both models' metric on the same clean holdout rows
    (neither trained on them), with bootstrap intervals. Different decisions judge on different rows,
    so each is a group of its own: nothing compares one version's holdout with another's."""
    decisions = [r for r in data["promotions"] if isinstance(r.get("challenger_metrics"), dict)
                 and (_paired(r) or not r.get("champion_before"))]
    if not decisions:
        return '<h2>Gate comparisons</h2><p class="empty">No gate comparison yet.</p>'
    names = list(dict.fromkeys(str(k) for r in decisions for k in r["challenger_metrics"]))
    charts = []
    for name in names:
        groups = []
        for r in filter(_paired, decisions):
            interval = next((i for i in r.get("intervals") or [] if isinstance(i, dict) and i.get("metric") == name), {})
            champion, challenger = r["champion_metrics"].get(name), r["challenger_metrics"].get(name)
            if isinstance(champion, int | float) and isinstance(challenger, int | float):
                old, new = interval.get("champion_ci") or (None, None), interval.get("challenger_ci") or (None, None)
                groups.append((f"v{r.get('version')} vs v{r.get('champion_before')} ({_rows_used(r)} rows)",
                               {"champion": (champion, *old), "challenger": (challenger, *new)}))
        if groups:
            charts.append(paired_chart(f"{name}: champion and challenger on the same rows, per decision", groups))
    rows = "".join(_comparison_row(r, names) for r in decisions)
    head = "".join(f"<th>{e(n)}: champion</th><th>{e(n)}: challenger</th>" for n in names)
    return ("<h2>Gate comparisons (both models on the same rows)</h2><p>Each decision scores the challenger "
            "and the champion on the same holdout rows, none of which either model trained on; values in "
            "brackets are bootstrap intervals. Different decisions judge on different rows: compare within "
            f"a decision, not across.</p>{''.join(charts)}<table><tr><th>decided at</th><th>challenger</th>"
            f"<th>champion</th><th>shared rows</th>{head}<th>improvement [CI]</th><th>decision</th></tr>"
            f"{rows}</table>")


def _comparison_row(r: dict[str, Any], names: list[str]) -> str:
    intervals = {i.get("metric"): i for i in r.get("intervals") or [] if isinstance(i, dict)}
    cells = []
    for name in names:
        i = intervals.get(name, {})
        old = _value_ci((r.get("champion_metrics") or {}).get(name), i.get("champion_ci")) if _paired(r) else "-"
        cells.append(f"<td>{old}</td><td>{_value_ci(r['challenger_metrics'].get(name), i.get('challenger_ci'))}</td>")
    holdout = r.get("holdout") if isinstance(r.get("holdout"), dict) else {}
    removed = f" ({e(holdout.get('rows_removed'))} removed)" if holdout.get("rows_removed") else ""
    champion = f"v{e(r.get('champion_before'))}" if _paired(r) else "none: first model, judged alone"
    decision = str(r.get("decision", ""))
    return (f"<tr><td>{e(_when(r.get('decided_at')))}</td><td>v{e(r.get('version'))}</td><td>{champion}</td>"
            f"<td>{e(_rows_used(r))}{removed}</td>{''.join(cells)}<td>{_intervals(r)}</td>"
            f"<td class=\"{e(decision)}\">{e(decision)}</td></tr>")


def drift_section(data: dict[str, Any]) -> str:
    """Each version's predictions against its own reference (the data it was trained on), one series per
    version, and a sentence where a retrain left the drift in place."""
    drift, pipeline = data["drift"], data["pipeline"]
    threshold = next((d.get("threshold") for d in drift if isinstance(d.get("threshold"), int | float)), None)
    keys = list(dict.fromkeys(_partition_of(d) for d in drift))
    versions = sorted({str(d.get("model_version")) for d in drift}, key=lambda v: (len(v), v))
    series = {}
    for version in versions:
        mine = {_partition_of(d): d.get("share") for d in drift if str(d.get("model_version")) == version}
        series[f"v{version} vs its training data"] = [mine.get(k) if isinstance(mine.get(k), int | float) else None
                                                      for k in keys]
    chart = line_chart("drift share per partition, each version against its own reference", keys, series,
                       threshold=threshold)
    notes = "".join(f'<p class="fail">{e(note)}</p>' for note in drift_notes(data))
    rows = "".join(_drift_row(pipeline, d) for d in drift)
    table = ("<table><tr><th>report</th><th>model version (reference: its training data)</th><th>drift share</th>"
             f"<th>drifted columns</th><th>link</th></tr>{rows}</table>") if drift else ""
    return f"<h2>Drift</h2>{chart}{notes}{table}"


def _partition_of(d: dict[str, Any]) -> str:
    return str(d.get("key", "")).rsplit("__v", 1)[0]


def drift_notes(data: dict[str, Any]) -> list[str]:
    """Plain sentences for each champion a retrain after drift produced whose own predictions still drift."""
    notes = []
    for r in data["promotions"]:
        version, before = str(r.get("version")), r.get("champion_before")
        if r.get("decision") != "promoted" or not before:
            continue
        mine = [d for d in data["drift"] if str(d.get("model_version")) == version]
        drifted_before = any(d.get("drift") for d in data["drift"] if str(d.get("model_version")) == str(before))
        after_drift = "drift" in str(r.get("retrain_evidence") or "") or drifted_before
        if mine and mine[-1].get("drift") and after_drift:
            last = mine[-1]
            notes.append(f"v{version} was trained after input drift, but its own predictions still drift from the "
                         f"data it was trained on (share {_num(last.get('share'))} >= {_num(last.get('threshold'))} "
                         f"on {_partition_of(last)}): the retrain could not remove the drift. v{version} learned "
                         "from only part of the shift, since its training window still holds data from before it; "
                         "the drift fades as later retrains take in more data from after the shift.")
    return notes


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
    body = "".join(section(data) for section in (champion_section, search_section, comparison_section,
                                                 outcomes_section, drift_section, validation_section))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Model health: {e(name)}</title>"
            f"<style>{STYLE}</style></head><body><h1>Model health: {e(name)}</h1>{body}</body></html>")


def render_index(pipelines: list[str]) -> str:
    base = settings.ui_base_path() + settings.UI_PREFIX
    items = "".join(f'<li><a href="{e(base)}/health/{e(p)}">{e(p)}</a></li>' for p in pipelines)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Model health</title><style>{STYLE}</style>"
            f"</head><body><h1>Model health</h1><ul>{items or '<li>No pipeline yet.</li>'}</ul></body></html>")
