"""Shadow scoring: how the challenger's predictions compare with the champion's on the same rows.

The score task writes the challenger's predictions beside the champion's (``shadow_prediction``,
core/score.py); the monitor streams them through :func:`compare_predictions`: agreement of the
labels (classification) or the mean absolute difference (regression) over every row, and, for the
rows whose label is known by then (a later partition may bring it), each model's error against it:
error rate (1 - accuracy) for classification, mean absolute error for regression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

PREDICTION, SHADOW = "prediction", "shadow_prediction"


def compare_predictions(batches: Iterable, task: str, *, key: str | None = None,
                        labels: pd.Series | None = None) -> dict[str, Any]:
    """One pass over record batches holding ``prediction`` and ``shadow_prediction`` (and ``key`` when
    ``labels``, a Series of labels indexed by key, is given). Returns {rows, agreement |
    mean_abs_difference, labelled_rows, error_metric, champion_error, challenger_error}; the errors
    are None when no row has a label."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if labels is not None:
        if key is None:
            raise ValueError("labels need the key column that joins them to the predictions")
        labels = labels[labels.notna()]
        labels = labels[~labels.index.duplicated(keep="last")]
    classify = task == "classification"
    rows = labelled = 0
    same = 0.0  # agreeing rows, or the sum of absolute differences
    errors = [0.0, 0.0]  # champion, challenger: wrong labels, or the sum of absolute errors
    for batch in batches:
        names = batch.schema.names
        missing = [c for c in (PREDICTION, SHADOW, *([key] if labels is not None else [])) if c not in names]
        if missing:
            raise ValueError(f"predictions lack column(s) {missing} for the shadow comparison (have {names})")
        champion = batch.column(PREDICTION).to_numpy(zero_copy_only=False)
        challenger = batch.column(SHADOW).to_numpy(zero_copy_only=False)
        rows += len(champion)
        same += _closeness(champion, challenger, classify)
        if labels is not None and len(labels):
            truth = labels.reindex(batch.column(key).to_pandas())
            known = truth.notna().to_numpy()
            labelled += int(known.sum())
            truth = truth.to_numpy()[known]
            errors[0] += _error(champion[known], truth, classify)
            errors[1] += _error(challenger[known], truth, classify)
    result: dict[str, Any] = {"rows": rows}
    if classify:
        result["agreement"] = round(same / rows, 6) if rows else None
    else:
        result["mean_abs_difference"] = round(same / rows, 6) if rows else None
    result.update({"labelled_rows": labelled, "error_metric": "error_rate" if classify else "mae",
                   "champion_error": round(errors[0] / labelled, 6) if labelled else None,
                   "challenger_error": round(errors[1] / labelled, 6) if labelled else None})
    return result


def _closeness(a, b, classify: bool) -> float:
    """Agreeing labels, or the sum of absolute differences."""
    import numpy as np

    if classify:
        return float(np.count_nonzero(_equal(a, b)))
    return float(np.abs(a.astype(float) - b.astype(float)).sum())


def _error(predicted, truth, classify: bool) -> float:
    """Wrong labels, or the sum of absolute errors."""
    import numpy as np

    if not len(truth):
        return 0.0
    if classify:
        return float(np.count_nonzero(~_equal(predicted, truth)))
    return float(np.abs(predicted.astype(float) - truth.astype(float)).sum())


def _equal(a, b):
    """Element-wise label equality; numbers compare as numbers (a label column read with gaps is float)."""
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    numeric = "biuf"
    if a.dtype.kind in numeric and b.dtype.kind in numeric:
        return a.astype(float) == b.astype(float)
    return a.astype(str) == b.astype(str)


def later_labels(frames: Iterable[pd.DataFrame], key: str, target: str) -> pd.Series:
    """Labels by key from validated partitions, oldest first: a later partition's label for a key wins
    (a label that arrived or was corrected later); rows without a label are left out."""
    import pandas as pd

    parts = [f[[key, target]] for f in frames if key in f.columns and target in f.columns]
    if not parts:
        return pd.Series(dtype=object)
    table = pd.concat(parts, ignore_index=True).dropna(subset=[target])
    table = table.drop_duplicates(subset=[key], keep="last")
    return pd.Series(table[target].to_numpy(), index=table[key].to_numpy(), name=target)
