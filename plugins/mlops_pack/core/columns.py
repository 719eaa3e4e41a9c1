"""Typed columns for file and SQL sources: the spec's ``fields`` applied to a frame read from a table.

Plain functions, no Airflow import. The rules match scraping's (docs/ingestion.md): a value that does
not parse becomes null with a ``field`` problem, a row without a key is quarantined as a ``record``
problem, and rows repeating a key keep the last one (counted). Validation decides whether a column
with nulls is still usable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_pack.core.spec import ColumnSpec

MAX_PROBLEMS_PER_COLUMN = 100  # listed in full up to this many per column and origin; all are counted


class SourceColumnsError(MlopsError, ValueError):
    """A source's data lacks a column the spec names; the message names the origin and the columns."""


def conform(frame: pd.DataFrame, fields: dict[str, ColumnSpec], key: str, origin: str,
            ) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, int]]:
    """``frame`` cut to the spec's ``fields`` (renamed, typed), with its problems and counts.

    Returns (rows, problems, stats): rows have exactly the spec's columns in spec order; problems
    are ``{"kind": "field"|"record", "reason", "origin", ...}``; stats count ``records_kept``,
    ``records_quarantined``, ``duplicate_records`` and ``field_problems``.
    Raises SourceColumnsError naming ``origin`` when a named column is missing.
    """
    import pandas as pd

    wanted = {name: spec.column or name for name, spec in fields.items()}
    missing = sorted({c for c in wanted.values() if c not in frame.columns})
    if missing:
        raise SourceColumnsError(f"{origin}: columns {missing} named in source.fields are missing; it has "
                                 f"{list(map(str, frame.columns))[:30]}")
    out = pd.DataFrame({name: frame[column].reset_index(drop=True) for name, column in wanted.items()})
    problems: list[dict[str, Any]] = []
    field_problems = 0
    for name, spec in fields.items():
        typed, bad = _typed(out[name], spec.type)
        if bad.any():
            field_problems += int(bad.sum())
            for index in list(bad[bad].index)[:MAX_PROBLEMS_PER_COLUMN]:
                problems.append({"kind": "field", "origin": origin, "field": name, "value": str(out.at[index, name]),
                                 "reason": f"{name}: {out.at[index, name]!r} is not a {spec.type}"})
        out[name] = typed
    keyless = out[key].isna() | (out[key].astype("string").str.strip() == "")
    for record in out[keyless].head(MAX_PROBLEMS_PER_COLUMN).to_dict(orient="records"):
        problems.append({"kind": "record", "origin": origin, "reason": f"no value in key {key!r}",
                         "record": {k: _plain(v) for k, v in record.items()}})
    kept = out[~keyless]
    deduped = kept.drop_duplicates(subset=[key], keep="last")
    stats = {"records_kept": len(deduped), "records_quarantined": int(keyless.sum()),
             "duplicate_records": len(kept) - len(deduped), "field_problems": field_problems}
    return deduped.reset_index(drop=True), problems, stats


def _typed(values: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """(typed values, mask of values that were present but did not parse)."""
    import pandas as pd

    present = values.notna() & ~((values.astype("string").str.strip() == "").fillna(False))
    if kind == "string":
        typed = values.astype("string").where(present, pd.NA).astype(object).where(present, None)
        return typed, pd.Series(False, index=values.index)
    if kind in ("number", "integer"):
        numbers = pd.to_numeric(values.where(present), errors="coerce")
        finite = numbers.notna() & numbers.abs().ne(float("inf"))
        if kind == "integer":
            whole = finite & (numbers.fillna(0) % 1 == 0) & numbers.abs().le(2**63 - 1)
            typed = numbers.where(whole).astype("Int64")
            return typed, present & ~whole
        return numbers.where(finite).astype("float64"), present & ~finite
    if kind == "date":
        parsed = pd.to_datetime(values.where(present), errors="coerce", utc=False, format="mixed")
        typed = parsed.dt.date.where(parsed.notna(), None)
        return typed, present & parsed.isna()
    raise ValueError(f"unknown column type {kind!r}")


def _plain(value: Any) -> Any:
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value if isinstance(value, str | int | float | bool) else str(value)
