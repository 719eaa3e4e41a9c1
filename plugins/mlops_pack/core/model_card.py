"""A model card per registered version: one document an auditor reads, as JSON and as HTML. No Airflow,
no MLflow.

The card is written when the gate decides on the version (promote, reject, roll back) and rewritten
whenever later evidence about it lands: a drift report or a realized-performance record of its
predictions, a reproduce run. It holds the training data window with its data versions (digests), the
code that built the model, its params and seeds, the holdout metrics with the gate's bootstrap
intervals, the slices the gate checked, each decision with its reasons and who made it, and the drift
and realized-performance history since. ``gather_evidence`` reads what the pipeline's storage holds
about a version, ``assemble`` makes the card, ``render_html`` shows it with every value escaped (some
come from scraped pages). Cards live in ``reports/model_cards/v<version>/`` (card.json, card.html),
served by the plugin like every report; links inside the card are relative to that folder.
"""

from __future__ import annotations

from html import escape
from typing import Any

from mlops_pack.core.storage import StorageError, StoragePath, read_json

CARDS_AREA = "reports/model_cards"
LIBRARIES_SHOWN = ("python", "scikit-learn", "numpy", "pandas", "mlflow", "airflow-mlops-pack")


def card_folder(version: Any) -> str:
    """The card's folder in the pipeline's storage (relative to the pipeline's root)."""
    return f"{CARDS_AREA}/v{version}"


def _json_files(folder: StoragePath, name: str | None = None) -> list[Any]:
    """``folder/*.json`` (or ``folder/*/<name>``) parsed, in name order; unreadable ones left out."""
    if not folder.exists():
        return []
    found = []
    for child in sorted(folder.iterdir(), key=lambda c: c.name):
        if child.name.startswith((".", "_")):
            continue
        path = child / name if name else child
        if (name or child.name.endswith(".json")) and path.exists():
            try:
                record = read_json(path)
                if isinstance(record, dict) and name:
                    record.setdefault("partition", child.name)  # a report's folder is named by its partition
                found.append(record)
            except StorageError:  # one damaged record must not hide the others from the card
                continue
    return [f for f in found if isinstance(f, dict)]


def gather_evidence(root: StoragePath, version: Any) -> dict[str, Any]:
    """What the pipeline's storage ``root`` holds about ``version``: its decisions (``promotions/``), drift
    reports of its predictions (``reports/drift/``), realized-performance records (``performance/``) and
    the last reproduce report (``reports/reproduce/v<version>/``)."""
    version = str(version)
    decisions = [r for r in _json_files(root / "promotions") if str(r.get("version")) == version]
    drift = [s for s in _json_files(root / "reports" / "drift", "summary.json") if str(s.get("model_version")) == version]
    performance = [r for r in _json_files(root / "performance", "summary.json")
                   if str(r.get("model_version")) == version]
    reproduce_file = root / "reports" / "reproduce" / f"v{version}" / "report.json"
    reproduced = read_json(reproduce_file) if reproduce_file.exists() else None
    return {"decisions": sorted(decisions, key=lambda r: str(r.get("decided_at"))),
            "drift": sorted(drift, key=lambda s: str(s.get("partition"))),
            "performance": sorted(performance, key=lambda r: str(r.get("partition"))),
            "reproduce": reproduced if isinstance(reproduced, dict) else None}


def assemble(*, pipeline: str, version: Any, tags: dict[str, str], params: dict[str, str], run_id: str | None,
             created_at: str | None, inputs: dict[str, Any] | None, aliases: list[str], evidence: dict[str, Any],
             slices: list[str], updated_at: str) -> dict[str, Any]:
    """The card of ``pipeline`` version ``version`` from its registry tags, its run's ``params``, the run's
    recorded training inputs (core/reproduce.py; None for a version trained before they were recorded),
    its current ``aliases``, the storage ``evidence`` (``gather_evidence``) and the gate's ``slices``."""
    decisions = evidence.get("decisions") or []
    gate = next((d for d in reversed(decisions) if isinstance(d.get("challenger_metrics"), dict)), None)
    intervals = {i.get("metric"): i for i in (gate or {}).get("intervals") or [] if isinstance(i, dict)}
    holdout = {k.removeprefix("holdout_"): _number(v) for k, v in tags.items()
               if k.startswith("holdout_") and k != "holdout_uri" and "." not in k}
    metrics = [{"metric": name, "value": value, "ci": (intervals.get(name) or {}).get("challenger_ci"),
                "confidence": (intervals.get(name) or {}).get("confidence")} for name, value in sorted(holdout.items())]
    code = {k: v for k, v in tags.items() if k.startswith("code.")}
    inputs = inputs or {}
    return {
        "pipeline": pipeline, "version": str(version), "run_id": run_id, "created_at": created_at,
        "updated_at": updated_at, "aliases": sorted(aliases), "status": _status(tags),
        "data": {"partitions": inputs.get("partitions") or [{"key": k, "version": None}
                                                           for k in (tags.get("data_partitions") or "").split(",") if k],
                 "train": {"version": tags.get("data_version"), "uri": tags.get("train_uri"),
                           "rows": _number(params.get("train_rows"))},
                 "holdout": {"version": inputs.get("holdout_version"), "uri": tags.get("holdout_uri"),
                             "rows": _number(params.get("holdout_rows"))},
                 "record_key": inputs.get("record_key")},
        "code": {"model": params.get("pipeline") or params.get("estimator"), "identity": code,
                 "libraries": {k: v for k, v in (inputs.get("libraries") or {}).items() if k in LIBRARIES_SHOWN}},
        "params": {k.removeprefix("model."): v for k, v in sorted(params.items()) if k.startswith("model.")},
        "search_best_params": inputs.get("search_best_params"),
        "seeds": inputs.get("seeds") or {},
        "training": {"trained_because": tags.get("retrain_reason"), "evidence": tags.get("retrain_evidence")},
        "holdout_metrics": metrics,
        "gate": None if gate is None else {
            "decided_at": gate.get("decided_at"), "decision": gate.get("decision"), "reason": gate.get("reason"),
            "against": gate.get("champion_before"), "rows_used": (gate.get("holdout") or {}).get("rows_used",
                                                                                                 gate.get("holdout_rows")),
            "intervals": list(intervals.values())},
        "slices": {"checked": list(slices), "failed": list((gate or {}).get("slices_failed") or [])},
        "decisions": [{k: d.get(k) for k in ("decided_at", "decision", "reason", "approved_by", "champion_before",
                                             "champion_after", "dag_id", "run_id")} for d in decisions],
        "drift": [{k: s.get(k) for k in ("partition", "share", "threshold", "drift", "drifted_columns")}
                  | {"report": f"reports/drift/{s.get('partition')}/report.html"} for s in evidence.get("drift") or []],
        "performance": [_performance(r) for r in evidence.get("performance") or []],
        "reproduce": _reproduce(evidence.get("reproduce")),
    }


def _status(tags: dict[str, str]) -> str:
    if tags.get("attempt_status") == "abandoned":
        return "abandoned"
    return tags.get("decision") or "not judged yet"


def _performance(r: dict[str, Any]) -> dict[str, Any]:
    quality = r.get("quality_report") if isinstance(r.get("quality_report"), dict) else {}
    path = quality.get("path")
    return {"partition": r.get("partition"), "status": r.get("status"), "labelled_rows": r.get("labelled_rows"),
            "predicted_rows": r.get("predicted_rows"), "coverage": r.get("coverage"), "decayed": r.get("decayed"),
            "metrics": {k: v for k, v in (r.get("metrics") or {}).items() if isinstance(v, dict)},
            "baselines": r.get("baselines") or {},
            "report": path if isinstance(path, str) and path.startswith("reports/quality/") else None}


def _reproduce(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if not report:
        return None
    return {"checked_at": report.get("checked_at"), "reproduced": report.get("reproduced"),
            "differences": [d.get("problem") for d in report.get("data") or []]
            + [f"{d.get('library')} {d.get('recorded')} -> {d.get('now')}" for d in report.get("libraries") or []]
            + [f"{d.get('tag')} changed" for d in report.get("code") or []],
            "report": f"reports/reproduce/v{report.get('version')}/report.json"}


def _number(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in str(value) else number


# ----- HTML -----

STYLE = ("body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;max-width:70em}table{border-collapse:collapse;"
         "margin:.4em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left;"
         "vertical-align:top;overflow-wrap:anywhere}th{background:#f3f3f3}.promoted,.ok{color:#176317}"
         ".rejected,.fail{color:#a31515}.empty{color:#777}")


def e(value: Any) -> str:
    """Escape anything for HTML text and attributes."""
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str("-" if value is None else value)


def _link(card_relative: str | None, text: str) -> str:
    """A link from the card's folder (``reports/model_cards/v<n>/``) to ``card_relative`` in the pipeline's storage."""
    if not card_relative:
        return "-"
    return f'<a href="../../../{e(card_relative)}">{e(text)}</a>'


def _table(head: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{e(empty)}</p>'
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + f"</tr>{cells}</table>"


def _pairs(items: dict[str, Any]) -> str:
    return _table(["", ""], [[e(k), e(_num(v))] for k, v in items.items()], "none")


def render_html(card: dict[str, Any]) -> str:
    """The card as one self-contained HTML page; every value escaped."""
    name, version = card["pipeline"], card["version"]
    data, code = card["data"], card["code"]
    sections = [
        f"<p>Status: <b class=\"{e(card['status'])}\">{e(card['status'])}</b>; aliases now: "
        f"{e(', '.join(card['aliases']) or 'none')}; MLflow run {e(card['run_id'])}; registered "
        f"{e(card['created_at'])}; card updated {e(card['updated_at'])}. "
        f"<a href=\"../../../../../mlflow/models/{e(name)}/versions/{e(version)}\">MLflow model version</a>, "
        "<a href=\"card.json\">card.json</a></p>",
        "<h2>Data</h2>" + _table(["partition", "data version"], [[e(p.get("key")), e(p.get("version") or "-")]
                                                                for p in data["partitions"]], "no partition recorded")
        + _table(["set", "data version", "rows", "location"],
                 [[s, e(data[s]["version"] or "-"), e(_num(data[s]["rows"])), e(data[s]["uri"] or "-")]
                  for s in ("train", "holdout")], "")
        + f"<p>Record key: {e(data.get('record_key') or '-')}. Trained because: "
          f"{e(card['training'].get('trained_because') or '-')}</p>",
        f"<h2>Code</h2><p>Model: <b>{e(code['model'])}</b></p>" + _pairs(code["identity"]) + _pairs(code["libraries"]),
        "<h2>Params and seeds</h2>" + _pairs(card["params"]) + _pairs({f"seed.{k}": v for k, v in card["seeds"].items()})
        + (_pairs({f"search.{k}": v for k, v in card["search_best_params"].items()})
           if card.get("search_best_params") else ""),
        "<h2>Holdout metrics</h2>" + _table(
            ["metric", "value", "bootstrap interval"],
            [[e(m["metric"]), e(_num(m["value"])),
              e(f"[{_num(m['ci'][0])}, {_num(m['ci'][1])}] @{m['confidence']}") if m.get("ci") else "-"]
             for m in card["holdout_metrics"]], "no holdout metric recorded"),
        _gate(card), _decisions(card), _drift(card), _performance_html(card), _reproduce_html(card),
    ]
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Model card: {e(name)} v{e(version)}</title>"
            f"<style>{STYLE}</style></head><body><h1>Model card: {e(name)} v{e(version)}</h1>{''.join(sections)}"
            "</body></html>")


def _gate(card: dict[str, Any]) -> str:
    gate, slices = card.get("gate"), card["slices"]
    if not gate:
        return '<h2>Gate</h2><p class="empty">The gate has not judged this version.</p>'
    intervals = _table(["metric", "champion", "challenger", "improvement [CI]", "required", "cleared"],
                       [[e(i.get("metric")), e(_num(i.get("champion"))), e(_num(i.get("challenger"))),
                         e(f"{_num(i.get('improvement'))} [{_num(i.get('low'))}, {_num(i.get('high'))}]"),
                         e(_num(i.get("required"))), e(i.get("cleared"))] for i in gate["intervals"]],
                       "judged alone (no champion to compare with)")
    failed = ", ".join(f"{s.get('slice')} ({s.get('rows')} rows)" for s in slices["failed"]) or "none"
    return (f"<h2>Gate</h2><p>{e(gate['decision'])} at {e(gate['decided_at'])} against champion "
            f"{e(gate['against'] or 'none')} on {e(gate['rows_used'])} holdout rows: {e(gate['reason'])}</p>"
            f"{intervals}<p>Slices checked: {e(', '.join(slices['checked']) or 'none')}; slices worse beyond the "
            f"tolerance: {e(failed)}</p>")


def _decisions(card: dict[str, Any]) -> str:
    rows = [[e(d["decided_at"]), f"<span class=\"{e(d['decision'])}\">{e(d['decision'])}</span>", e(d["approved_by"]),
             e(f"{d['champion_before'] or '-'} -> {d['champion_after'] or '-'}"), e(d["reason"]),
             e(f"{d['dag_id']} {d['run_id']}")] for d in card["decisions"]]
    return "<h2>Decisions</h2>" + _table(["decided at", "decision", "by", "champion", "reason", "run"], rows,
                                         "no decision yet")


def _drift(card: dict[str, Any]) -> str:
    rows = [[e(d["partition"]), f"<span class=\"{'fail' if d['drift'] else 'ok'}\">{e(_num(d['share']))}</span>",
             e(_num(d["threshold"])), e(", ".join(map(str, d["drifted_columns"] or [])) or "-"),
             _link(d["report"], "report")] for d in card["drift"]]
    return "<h2>Drift since</h2>" + _table(["predictions", "drift share", "threshold", "drifted columns", "report"],
                                           rows, "no drift report of its predictions yet")


def _performance_html(card: dict[str, Any]) -> str:
    rows = []
    for r in card["performance"]:
        shown = "; ".join(f"{k} {_num(v.get('value'))} [{_num(v.get('low'))}, {_num(v.get('high'))}] (holdout "
                          f"{_num(r['baselines'].get(k))})" for k, v in r["metrics"].items())
        rows.append([e(r["partition"]), e(f"{r['labelled_rows']} of {r['predicted_rows']}"), e(shown or r["status"]),
                     f"<span class=\"{'fail' if r['decayed'] else 'ok'}\">{e('decayed' if r['decayed'] else 'no')}</span>",
                     _link(r["report"], "quality report")])
    return "<h2>Realized performance since</h2>" + _table(
        ["predictions", "labelled", "realized metrics [CI]", "decay", "report"], rows, "no labelled predictions yet")


def _reproduce_html(card: dict[str, Any]) -> str:
    r = card.get("reproduce")
    if not r:
        return ('<h2>Reproduction</h2><p class="empty">Not checked yet: <code>mlops-pack reproduce '
                f"{e(card['pipeline'])} {e(card['version'])}</code></p>")
    verdict = "reproduced bit for bit" if r["reproduced"] else "NOT reproduced"
    differences = "".join(f"<li>{e(d)}</li>" for d in r["differences"])
    return (f"<h2>Reproduction</h2><p>{e(r['checked_at'])}: <b class=\"{'ok' if r['reproduced'] else 'fail'}\">"
            f"{e(verdict)}</b> ({_link(r['report'], 'report')})</p>"
            + (f"<ul>{differences}</ul>" if differences else ""))
