"""Typed columns for file and SQL sources: the spec's ``fields`` applied to a frame read from a table.

Plain functions, no Airflow import. The typing and de-duplication rules are those of every source
kind (core/value_types.py, docs/ingestion.md): a value that does not type becomes null with a
``field`` problem, a row without a key is a ``record`` problem, and of rows repeating a key the last
read is kept (an earlier, different one is a ``record`` problem; identical repeats are counted).
Validation decides whether a column with nulls is still usable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_pack.core.spec import ColumnSpec
    from mlops_pack.core.value_types import ValueFormat

MAX_PROBLEMS_PER_COLUMN = 1000  # listed in full up to this many per column and origin; all are counted


class SourceColumnsError(MlopsError, ValueError):
    """A source's data lacks a column the spec names; the message names the origin and the columns."""


def conform(frame: pd.DataFrame, fields: dict[str, ColumnSpec], key: str, origin: str,
            fmt: ValueFormat | None = None) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, int]]:
    """``frame`` cut to the spec's ``fields`` (renamed, typed), with its problems and counts.

    Returns (rows, problems, stats): rows have exactly the spec's columns in spec order; problems
    are ``{"kind": "field"|"record", "reason", "origin", ...}``; stats count ``records_kept``,
    ``records_quarantined``, ``duplicate_records`` and ``field_problems``.
    Raises SourceColumnsError naming ``origin`` when a named column is missing.
    """
    import pandas as pd

    from mlops_pack.core.value_types import (
        DEFAULT_FORMAT,
        keep_last,
        keyless_reason,
        superseded_reason,
        type_column,
    )

    wanted = {name: spec.column or name for name, spec in fields.items()}
    missing = sorted({c for c in wanted.values() if c not in frame.columns})
    if missing:
        raise SourceColumnsError(f"{origin}: columns {missing} named in source.fields are missing; it has "
                                 f"{list(map(str, frame.columns))[:30]}")
    raw = {name: frame[column].reset_index(drop=True) for name, column in wanted.items()}
    typed: dict[str, pd.Series] = {}
    problems: list[dict[str, Any]] = []
    field_problems = 0
    for name, spec in fields.items():
        typed[name], reasons = type_column(raw[name], spec.type, fmt or DEFAULT_FORMAT)
        field_problems += len(reasons)
        for position, reason in list(reasons.items())[:MAX_PROBLEMS_PER_COLUMN]:
            problems.append({"kind": "field", "origin": origin, "field": name, "value": _text(raw[name].iat[position]),
                             "reason": f"{name}: {reason}"})
    out = pd.DataFrame(typed, index=pd.RangeIndex(len(frame)))
    plan = keep_last(out[key].tolist(), pd.util.hash_pandas_object(out.astype(str), index=False).tolist())
    for kind, positions in (("keyless", plan["keyless"]), ("superseded", plan["superseded"])):
        for record in out.iloc[positions[:MAX_PROBLEMS_PER_COLUMN]].to_dict(orient="records"):
            reason = keyless_reason(key) if kind == "keyless" else superseded_reason(key, plain_value(record[key]))
            problems.append({"kind": "record", "origin": origin, "reason": reason,
                             "record": {k: plain_value(v) for k, v in record.items()}})
    kept = out.iloc[plan["kept"]].reset_index(drop=True)
    stats = {"records_kept": len(kept), "records_quarantined": len(plan["keyless"]) + len(plan["superseded"]),
             "duplicate_records": len(plan["superseded"]) + len(plan["identical"]), "field_problems": field_problems}
    return kept, problems, stats


def _text(value: Any) -> str:
    return str(value)[:200]


def plain_value(value: Any) -> Any:
    """A cell as JSON-able text for a rejects list: None for missing, plain scalars as they are."""
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value if isinstance(value, str | int | float | bool) else str(value)
