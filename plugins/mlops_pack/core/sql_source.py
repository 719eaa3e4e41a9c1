"""SQL sources: the incremental query and the watermark it advances.

Plain functions, no Airflow import. The spec's query is wrapped so the database filters and orders
on the watermark column: ``SELECT * FROM (<query>) AS src WHERE wm >= %s ORDER BY wm LIMIT n``.
The filter is inclusive on purpose: rows committed late with the newest watermark value already
seen (two rows with the same ``updated_at``, the second committed after the last run read the
first) are not lost. The keys already read at that value are kept in the state and dropped from
the next read, so an unchanged table reads nothing new.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def incremental_query(query: str, watermark_column: str | None, watermark: Any, limit: int,
                      placeholder: str = "%s") -> tuple[str, list[Any]]:
    """The SQL and its parameters for one run: everything (no watermark column), or the rows from the
    last watermark on (inclusive), oldest first, at most ``limit`` rows."""
    if watermark_column is None:
        return f"SELECT * FROM ({query}) AS src LIMIT {int(limit)}", []
    if not IDENTIFIER.match(watermark_column):
        raise ValueError(f"source.watermark_column {watermark_column!r} must be a plain column name")
    column = f'"{watermark_column}"'
    where, params = "", []
    if watermark is not None:
        where, params = f" WHERE src.{column} >= {placeholder}", [watermark]
    return (f"SELECT * FROM ({query}) AS src{where} ORDER BY src.{column} LIMIT {int(limit)}", params)


def new_rows(frame: pd.DataFrame, *, watermark_column: str | None, key_column: str,
             state: dict[str, Any] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of ``frame`` not read before, and the state to keep once they are ingested.

    ``frame`` holds the query's columns (before renaming), ordered by the watermark. Rows at the last
    watermark whose key was read then are dropped. Without a watermark column every row is new
    (the whole table is read each run; the validated merge by key keeps partitions free of repeats).
    """
    if watermark_column is None:
        return frame, dict(state or {})
    state = state or {}
    last, seen = state.get("watermark"), set(state.get("keys_at_watermark", []))
    if last is not None and seen:
        values = frame[watermark_column].map(encode)
        repeated = (values == last) & frame[key_column].astype(str).isin(seen)
        frame = frame[~repeated]
    frame = frame.reset_index(drop=True)
    if frame[watermark_column].notna().any():
        top = frame[watermark_column].dropna().max()
        at_top = frame[frame[watermark_column].map(encode) == encode(top)][key_column].astype(str)
        keep = set(at_top) | (seen if encode(top) == last else set())
        return frame, {"watermark": encode(top), "keys_at_watermark": sorted(keep)}
    return frame, dict(state)


def encode(value: Any) -> Any:
    """A watermark value as JSON (datetimes as ISO text, numpy numbers as Python numbers)."""
    if value is None:
        return None
    if isinstance(value, dt.date | dt.time) or hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
