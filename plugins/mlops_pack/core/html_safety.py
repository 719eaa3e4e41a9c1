"""Scraped values are hostile: neutralise them before third-party renderers put them into HTML.

Evidently 0.7 embeds the report's data as JSON in an inline ``<script>`` block without escaping
``</script>``, so a scraped ``</script><img onerror=...>`` runs when anyone opens the drift report
(docs/ingestion.md, "Safety"). The pack cannot fix the renderer, so every text value is made inert
before it gets there: ``&``, ``<`` and ``>`` become HTML entities. That mapping is one-to-one, so
distinct categories stay distinct and the drift statistics (frequencies per category) are unchanged;
the report shows ``&lt;script&gt;`` where the site had ``<script>``.

GX Data Docs are rendered from stored validation results, which are neutralised the same way before
the docs are (re)built (``neutralise_json_files``). No pandas import at module level.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

ACTIVE = re.compile(r"[&<>]")
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def neutralise_text(value: Any) -> Any:
    """``value`` with ``&``, ``<``, ``>`` as entities when it is a string holding one; else unchanged."""
    if isinstance(value, str) and ACTIVE.search(value):
        return ACTIVE.sub(lambda m: ENTITIES[m.group()], value)
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text value neutralised (a copy, only when something had to change).

    Works on each column's distinct values (pandas.factorize), so the cost is one hash pass per text
    column plus the distinct values, not a Python call per row: drift runs on up to millions of rows.
    """
    fixed = {}
    for name in frame.columns:
        column = _neutralised(frame[name])
        if column is not None:
            fixed[name] = column
    if not fixed:
        return frame
    out = frame.copy(deep=False)
    for name, column in fixed.items():
        out[name] = column
    return out


def _neutralised(column: pd.Series) -> pd.Series | None:
    import numpy as np
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        renamed = [neutralise_text(c) for c in categories]
        return None if renamed == list(categories) else column.cat.rename_categories(renamed)
    if not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)):
        return None
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    safe = np.array([neutralise_text(u) for u in uniques], dtype=object)
    changed = np.flatnonzero(safe != np.asarray(uniques, dtype=object))
    if changed.size == 0:
        return None
    rows = np.flatnonzero(np.isin(codes, changed))
    values = column.to_numpy(dtype=object, copy=True)
    values[rows] = safe[codes[rows]]
    return pd.Series(values, index=column.index, name=column.name)


def neutralise_json(value: Any) -> Any:
    """``value`` (parsed JSON) with every string neutralised."""
    if isinstance(value, dict):
        return {k: neutralise_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [neutralise_json(v) for v in value]
    return neutralise_text(value)


def neutralise_json_files(folder: Path) -> int:
    """Every ``*.json`` under ``folder`` rewritten with its strings neutralised; how many changed.

    GX Data Docs are rendered from the stored validation results and insert unexpected values into
    the page raw (a scraped ``<img onerror>`` becomes an element): neutralising the stored results,
    then rebuilding the docs, shows the values as text. Validation itself already ran on the raw data.
    """
    import json

    changed = 0
    for path in sorted(folder.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        safe = neutralise_json(data)
        if safe != data:
            path.write_text(json.dumps(safe), encoding="utf-8")
            changed += 1
    return changed
