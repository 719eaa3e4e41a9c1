"""Data drift of current vs reference data, reduced to a small JSON summary.

The verdicts come from the reference profile stored at training time (core/drift_profile.py, one
streaming pass over the predictions, Evidently's default methods and thresholds); Evidently renders
the human report (``drift_report``) from a bounded sample of both sides (``sample_frame``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def split_columns(columns: list[str], numeric_features: list[str], field_types: dict[str, str],
                  ) -> tuple[list[str], list[str]]:
    """(numeric, categorical) drift columns: numeric model features and number/integer fields are
    compared as distributions of numbers, everything else as categories."""
    numeric = [c for c in columns if c in numeric_features or field_types.get(c) in ("number", "integer")]
    return numeric, [c for c in columns if c not in numeric]


def spec_columns(spec: Any) -> tuple[list[str], list[str]]:
    """(numeric, categorical) drift columns of a PipelineSpec: the one split training and monitor share."""
    return split_columns(spec.drift_columns, spec.model.features.numeric,
                         {n: f.type for n, f in spec.source.fields.items()})


def sample_frame(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn uniformly without replacement (deterministic)."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).sort_index()


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str],
                 share_threshold: float, html_path: Path, json_path: Path, methods: dict[str, str] | None = None,
                 thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Run Evidently's DataDriftPreset, save HTML and JSON, and return {share, drifted_columns, ...}.

    ``methods`` / ``thresholds``: per-column overrides (the spec's ``drift`` section)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*numeric, *categorical]
    missing = {name: [c for c in columns if c not in frame.columns]
               for name, frame in (("reference", reference), ("current", current))}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        raise ValueError(f"drift columns missing: {missing}")
    from mlops_pack.core.html_safety import neutralise_frame

    # Evidently embeds values in an inline <script> unescaped: hostile scraped text must arrive inert.
    reference, current = neutralise_frame(reference[columns]), neutralise_frame(current[columns])
    # Integer fields are stored as nullable Int64 (core/value_types.py), which reach NumPy as objects in
    # Evidently's correlation step: hand it plain floats (missing values as NaN).
    reference, current = (frame.astype({c: "float64" for c in numeric}) for frame in (reference, current))
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(columns=columns, drift_share=share_threshold, per_column_method=methods or None,
                             per_column_threshold=thresholds or None)
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    snapshot.save_json(str(json_path))
    return summarise(snapshot.dict(), share_threshold)


def summarise(report: dict[str, Any], share_threshold: float) -> dict[str, Any]:
    """Drift share and the drifted columns from an Evidently 0.7 snapshot dict."""
    share, per_column = 0.0, {}
    for metric in report["metrics"]:
        kind = metric["config"].get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith("ValueDrift"):
            cfg = metric["config"]
            value = float(metric["value"])
            # p-value tests drift when below the threshold; distances drift when at or above it.
            is_p_value = "p_value" in cfg["method"].lower().replace("-", "_")
            drifted = value < cfg["threshold"] if is_p_value else value >= cfg["threshold"]
            per_column[cfg["column"]] = {"method": cfg["method"], "score": round(value, 5), "drifted": drifted}
    return {
        "share": round(share, 4),
        "threshold": share_threshold,
        "drift": share >= share_threshold,
        "drifted_columns": sorted(c for c, v in per_column.items() if v["drifted"]),
        "columns": per_column,
    }


def strongest_drift(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary a monitor run signals: the drifted report with the highest share, else the highest
    share overall (so the skip message names the closest call)."""
    if not summaries:
        raise ValueError("no drift summaries: nothing was checked")
    return max(summaries, key=lambda s: (bool(s["drift"]), s["share"]))
