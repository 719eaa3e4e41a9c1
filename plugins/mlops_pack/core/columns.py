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
    Raises SourceColumnsError naming ``origin`` when a named column is missing or cannot be typed.
    """
    typed, problems, field_problems = type_frame(frame, fields, origin, fmt)
    kept, record_problems, stats = keep_last_rows(typed, key, origin)
    return kept, problems + record_problems, {**stats, "field_problems": field_problems}


def type_frame(frame: pd.DataFrame, fields: dict[str, ColumnSpec], origin: str,
               fmt: ValueFormat | None = None) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
    """(the spec's columns of ``frame``, typed; field problems listed; field problems counted).

    Type each file on its own before putting files together: concatenating first lets pandas
    convert across them (a Parquet boolean beside a float became 1.0)."""
    import pandas as pd

    from mlops_pack.core.value_types import DEFAULT_FORMAT, type_column

    wanted = {name: spec.column or name for name, spec in fields.items()}
    missing = sorted({c for c in wanted.values() if c not in frame.columns})
    if missing:
        raise SourceColumnsError(f"{origin}: columns {missing} named in source.fields are missing; it has "
                                 f"{list(map(str, frame.columns))[:30]}")
    typed: dict[str, pd.Series] = {}
    problems: list[dict[str, Any]] = []
    field_problems = 0
    for name, spec in fields.items():
        raw = frame[wanted[name]].reset_index(drop=True)
        mismatch = schema_mismatch(raw, spec.type)
        if mismatch:
            raise SourceColumnsError(f"{origin}: column {wanted[name]!r} {mismatch}, not {spec.type}: the file's "
                                     "schema does not match source.fields")
        try:
            typed[name], reasons = type_column(raw, spec.type, fmt or DEFAULT_FORMAT)
        except Exception as exc:  # noqa: BLE001 - whatever a column holds, the error names the file and column
            raise SourceColumnsError(f"{origin}: column {wanted[name]!r} cannot be read as {spec.type}: "
                                     f"{type(exc).__name__}: {exc}") from exc
        field_problems += len(reasons)
        for position, reason in list(reasons.items())[:MAX_PROBLEMS_PER_COLUMN]:
            problems.append({"kind": "field", "origin": origin, "field": name, "value": _text(raw.iat[position]),
                             "reason": f"{name}: {reason}"})
    return pd.DataFrame(typed, index=pd.RangeIndex(len(frame))), problems, field_problems


def capped(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``problems`` of one origin typed in chunks, listing at most MAX_PROBLEMS_PER_COLUMN per field (as
    when typed whole; all are counted apart)."""
    seen: dict[Any, int] = {}
    kept = []
    for problem in problems:
        field = problem.get("field")
        seen[field] = seen.get(field, 0) + 1
        if field is None or seen[field] <= MAX_PROBLEMS_PER_COLUMN:
            kept.append(problem)
    return kept


def schema_mismatch(values: pd.Series, kind: str, sample: int = 1000) -> str | None:
    """What a typed column (Parquet, JSON) holds when no value of it can be a ``kind``: booleans for a
    number or date, nested or binary values for anything. None when values are to be judged one by one."""
    import pandas as pd

    if kind != "string" and pd.api.types.is_bool_dtype(values.dtype):
        return "holds booleans"
    if values.dtype != object:
        return None
    present = values.dropna().head(sample).tolist()  # a sample: a column is one type in Parquet
    nested = [v for v in present if isinstance(v, dict | list | tuple | bytes | bytearray)
              or type(v).__name__ == "ndarray"]
    if present and len(nested) == len(present):
        return f"holds nested or binary values ({', '.join(sorted({type(v).__name__ for v in nested}))})"
    if kind != "string" and present and all(isinstance(v, bool) for v in present):
        return "holds booleans"
    return None


def keep_last_rows(typed: pd.DataFrame, key: str, origin: str) -> tuple[pd.DataFrame, list[dict[str, Any]],
                                                                          dict[str, int]]:
    """Typed rows (in read order) under the one de-duplication rule (``value_types.keep_last``):
    (kept rows, record problems, counts)."""
    import pandas as pd

    from mlops_pack.core.value_types import keep_last, keyless_reason, superseded_reason

    plan = keep_last(typed[key].tolist(), pd.util.hash_pandas_object(typed.astype(str), index=False).tolist())
    problems: list[dict[str, Any]] = []
    for kind, positions in (("keyless", plan["keyless"]), ("superseded", plan["superseded"])):
        for record in typed.iloc[positions[:MAX_PROBLEMS_PER_COLUMN]].to_dict(orient="records"):
            reason = keyless_reason(key) if kind == "keyless" else superseded_reason(key, plain_value(record[key]))
            problems.append({"kind": "record", "origin": origin, "reason": reason,
                             "record": {k: plain_value(v) for k, v in record.items()}})
    kept = typed.iloc[plan["kept"]].reset_index(drop=True)
    stats = {"records_kept": len(kept), "records_quarantined": len(plan["keyless"]) + len(plan["superseded"]),
             "duplicate_records": len(plan["superseded"]) + len(plan["identical"])}
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
