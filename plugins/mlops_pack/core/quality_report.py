"""Evidently's model-quality report of labelled predictions: what people read beside the realized metrics.

The realized metrics and their CIs come from every labelled row (core/outcomes.py); this report is
rendered from a bounded sample of them (``labelled_sample``), with Evidently's ClassificationPreset
or RegressionPreset. Values are neutralised first, as for the drift report (core/html_safety.py):
Evidently embeds them in an inline ``<script>`` unescaped, and labels may come from scraped pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

TARGET, PREDICTION = "target", "prediction"


def labelled_sample(predictions: pd.DataFrame, labels: pd.Series, key: str) -> pd.DataFrame:
    """``target`` and ``prediction`` of the sampled ``predictions`` rows (``key``, ``prediction``) whose
    label ``labels`` (by key) knows; a classifier's labels and predictions compare as text when typed apart."""
    import pandas as pd

    truth = labels.reindex(predictions[key].to_numpy())
    known = truth.notna().to_numpy()
    return pd.DataFrame({TARGET: truth.to_numpy()[known], PREDICTION: predictions[PREDICTION].to_numpy()[known]})


def quality_report(frame: pd.DataFrame, task: str, html_path: Path, json_path: Path) -> dict[str, Any]:
    """Run Evidently's quality preset for ``task`` on ``frame`` (``target``, ``prediction``), save HTML and
    JSON, and return {rows, metrics: {name: value}} (the numbers the report shows)."""
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    from mlops_pack.core.html_safety import neutralise_frame

    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    missing = [c for c in (TARGET, PREDICTION) if c not in frame.columns]
    if missing:
        raise ValueError(f"quality report: the labelled sample lacks column(s) {missing}")
    frame = frame[[TARGET, PREDICTION]].reset_index(drop=True)
    if task == "regression":
        frame = frame.astype("float64")
        definition = DataDefinition(numerical_columns=[TARGET, PREDICTION],
                                    regression=[Regression(target=TARGET, prediction=PREDICTION)])
        preset: Any = RegressionPreset()
    else:
        if frame[TARGET].dtype != frame[PREDICTION].dtype:
            frame = frame.astype(str)
        frame = neutralise_frame(frame)
        classes = set(frame[TARGET]) | set(frame[PREDICTION])
        kind = BinaryClassification if len(classes) <= 2 else MulticlassClassification
        spec = {"target": TARGET, "prediction_labels": PREDICTION}
        if kind is BinaryClassification:  # the positive class: the larger label, as for roc_auc (core/metrics.py)
            spec["pos_label"] = sorted(classes, key=str)[-1]
        definition = DataDefinition(categorical_columns=[TARGET, PREDICTION], classification=[kind(**spec)])
        preset = ClassificationPreset()
    snapshot = Report([preset]).run(current_data=Dataset.from_pandas(frame, data_definition=definition),
                                    reference_data=None)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    snapshot.save_json(str(json_path))
    return {"rows": len(frame), "metrics": _values(snapshot.dict())}


def _values(report: dict[str, Any]) -> dict[str, float]:
    """Single-number metrics of the snapshot, by Evidently's metric name."""
    out = {}
    for metric in report.get("metrics") or []:
        value = metric.get("value")
        if isinstance(value, int | float):
            name = str(metric.get("metric_name") or metric.get("metric_id"))
            out[name.split("(", 1)[0]] = float(value)
    return out
