"""Which holdout rows the gate may judge on: none that either model trained on, by record key.

The challenger's holdout is disjoint from the challenger's own training set by construction, but not
from the champion's: a champion trained on another window (or another random or stratified split
of an overlapping one) has seen some of these rows, and judged on them it looks better than it is.
So before judging, every row whose key is in the training set of either model leaves the holdout;
what is left is the clean holdout both models are scored on, and the decision records how many rows
were used and removed, and why. Plain functions, no Airflow import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EXAMPLES = 5  # keys named per removal reason in the record: enough to look rows up, small enough for a tag


@dataclass(frozen=True)
class CleanHoldout:
    """The rows kept (``keep``, one flag per holdout row) and why the others were removed."""

    key: str
    keep: np.ndarray
    removed: list[dict[str, Any]] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def source_rows(self) -> int:
        return len(self.keep)

    @property
    def rows_used(self) -> int:
        return int(self.keep.sum())

    @property
    def rows_removed(self) -> int:
        return self.source_rows - self.rows_used

    def describe(self) -> str:
        """One line for reasons and tags: ``264 of 800 rows removed (264 champion v1 trained on)``."""
        if not self.removed:
            return f"none of {self.source_rows} rows removed: neither model trained on any"
        why = "; ".join(f"{r['rows']} {r['model']} trained on" for r in self.removed)
        return f"{self.rows_removed} of {self.source_rows} rows removed ({why})"

    def as_dict(self) -> dict[str, Any]:
        """The JSON the decision record carries under ``holdout``."""
        return {"key": self.key, "source_rows": self.source_rows, "rows_used": self.rows_used,
                "rows_removed": self.rows_removed, "removed": self.removed, "unknown": self.unknown,
                "summary": self.describe()}


def clean_holdout(holdout_keys: pd.Series, key: str, trained_on: dict[str, pd.Series],
                  unknown: dict[str, str] | None = None) -> CleanHoldout:
    """The holdout rows none of the models in ``trained_on`` (label such as ``champion v1`` -> the
    record keys of its training set) trained on.

    Keys are compared as text, so a key column stored as integers in one window and as strings in
    another still matches. A row two models trained on counts under each (``removed`` lists, per
    model, how many of its training rows were in the holdout) but is removed once. ``unknown``
    names the models whose training rows could not be read, and why: the gate refuses then
    (``refusal``), since nothing shows the holdout is unseen by them.
    """
    import numpy as np

    keys = holdout_keys.astype(str)
    keep = np.ones(len(keys), dtype=bool)
    removed = []
    for model, train_keys in trained_on.items():
        seen = keys.isin(set(train_keys.dropna().astype(str))).to_numpy()
        if seen.any():
            removed.append({"model": model, "rows": int(seen.sum()),
                            "examples": sorted(keys[seen].unique().tolist())[:EXAMPLES]})
        keep &= ~seen
    return CleanHoldout(key, keep, removed, dict(unknown or {}))


def refusal(holdout: CleanHoldout | None, rows: int, min_rows: int) -> str | None:
    """Why the gate cannot judge on ``rows`` holdout rows (the clean ones when ``holdout`` is given),
    or None when it can: a model's training rows are unknown, or fewer than ``min_rows`` are left."""
    if holdout is not None and holdout.unknown:
        why = "; ".join(f"{model}: {reason}" for model, reason in holdout.unknown.items())
        return (f"cannot show the holdout is unseen by every model ({why}); the gate judges only on rows "
                "neither model trained on")
    if rows >= min_rows:
        return None
    if holdout is not None and holdout.rows_removed:
        return (f"clean holdout has {rows} rows, fewer than min_holdout_rows={min_rows}: {holdout.describe()}; "
                "wait for more new data, or raise model.holdout_fraction or lower promotion.min_holdout_rows")
    return f"holdout has {rows} rows, fewer than min_holdout_rows={min_rows}"
