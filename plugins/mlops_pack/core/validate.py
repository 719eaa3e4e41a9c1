"""Run a Great Expectations suite on a DataFrame and return a small JSON-able result.

The suite comes from the spec's expectations and/or a GX suite JSON file. An ephemeral GX context
is used by default; pass ``docs_dir`` to also build Data Docs (an HTML page per validation).
Expectations are run in batches by the columns they read, each on a frame of just those columns,
with GX's BASIC result format (``expectation_groups``), object columns of str as Arrow strings where
that cannot change an answer (``_arrow_strings``) and GX's progress bars off; where the time went is
in docs/benchmarks.md (bench/validate.py --profile).
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def load_expectations(inline: list[dict[str, Any]], suite_file: Path | None) -> list[dict[str, Any]]:
    """Expectation configurations ({type, kwargs}) from the spec and the optional suite file."""
    expectations = [dict(e) for e in inline]
    if suite_file is not None:
        try:
            suite = json.loads(Path(suite_file).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read expectation suite {suite_file}: {exc}") from exc
        if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
            raise ValueError(f"expectation suite {suite_file} has no 'expectations' list")
        expectations += [{"type": e["type"], "kwargs": e.get("kwargs", {})} for e in suite["expectations"]]
    return expectations


def required_columns(expectations: list[dict[str, Any]]) -> set[str]:
    cols = set()
    for e in expectations:
        kwargs = e.get("kwargs", {})
        cols.update(c for c in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")) if c)
        cols.update(kwargs.get("column_list") or [])
    return cols


def validate_frame(df: pd.DataFrame, expectations: list[dict[str, Any]], suite_name: str,
                   docs_dir: Path | None = None) -> dict[str, Any]:
    """Validate ``df``; returns {success, evaluated, failed, failures[], docs}. Never raises on failure."""
    missing = sorted(required_columns(expectations) - set(df.columns))
    if missing:
        failures = [{"expectation": "columns_present", "column": c, "observed": "missing"} for c in missing]
        return {"success": False, "evaluated": len(expectations), "failed": len(failures), "failures": failures,
                "docs": None, "suite": suite_name}

    # GX logs "Skipping registering function ..." at INFO for each decorated method its lazy imports
    # meet (~210 lines per validate task log) and more internal chatter (saving datasources, metric
    # re-declarations): the pack reports what validation found itself. Its warnings and errors stay.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if docs_dir is not None:
        context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    else:
        context = gx.get_context(mode="ephemeral")
    # GX draws a tqdm progress bar on stderr per batch (a task log records it as ERROR lines; 182
    # writes, 4% of the time in bench/validate.py --profile). GX passes ``disable`` to tqdm itself, so
    # TQDM_DISABLE does not reach it: the context's own switch does (in memory, not saved to its yml).
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    _skip_decimal_scan_of_typed_arrays()
    source = context.data_sources.add_or_update_pandas(name=f"{suite_name}_source")
    batch_definition = source.add_dataframe_asset(name=f"{suite_name}_frame").add_batch_definition_whole_dataframe(
        f"{suite_name}_batch")
    results, runs = _validate_in_groups(df, expectations, batch_definition)
    if docs_dir is not None and runs:
        _store_and_build_docs(context, suite_name, results, runs[0])
        _safe_data_docs(context, Path(docs_dir))
    return summarise_results(results, suite_name, docs_dir)


# What summarise keeps (the unexpected share, the observed value, five unexpected values): GX's
# default SUMMARY format also counts every distinct unexpected value and lists their row indices.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}


def expectation_groups(expectations: list[dict[str, Any]]) -> list[tuple[list[str] | None, list[int]]]:
    """Expectations batched by the columns they read: (columns, indices into ``expectations``), in
    first-appearance order; table-level expectations (and ``expect_column_to_exist``, which asks the
    table) form one group that sees the whole frame (columns None).

    GX's pandas engine drops a column's nulls by filtering the whole frame it was given, once per
    column-map metric: given only the columns an expectation reads, that copy is one column, not
    all of them (measured 4.5x faster on 1M x 20, docs/benchmarks.md).
    """
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, e in enumerate(expectations):
        columns = required_columns([e])
        table_level = not columns or e["type"] == "expect_column_to_exist"
        key = None if table_level else tuple(sorted(columns))
        groups.setdefault(key, []).append(i)
    return [(list(k) if k is not None else None, members) for k, members in groups.items()]


def _validate_in_groups(df: pd.DataFrame, expectations: list[dict[str, Any]], batch_definition) -> tuple[list, list]:
    """The GX result of each expectation, in the order given, and the suite result of each group
    (one GX batch per group)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    results: list = [None] * len(expectations)
    runs = []
    with _no_batch_fingerprint():
        for n, (columns, members) in enumerate(expectation_groups(expectations)):
            suite = gx.ExpectationSuite(name=f"{batch_definition.name}_group{n}")
            for i in members:
                e = expectations[i]
                suite.add_expectation_configuration(ExpectationConfiguration(type=e["type"],
                                                                             kwargs=e.get("kwargs", {})))
            frame = df if columns is None else _arrow_strings(df[columns], [expectations[i] for i in members])
            run = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
                suite, result_format=RESULT_FORMAT)
            unmatched = list(run.results)
            for position, i in enumerate(members):
                # GX keeps the suite's order; check it (on the kwargs given: GX adds defaulted ones)
                same = run.results[position] if position < len(run.results) else None
                match = same if same in unmatched and _is_result_of(same, expectations[i]) else next(
                    r for r in unmatched if _is_result_of(r, expectations[i]))
                unmatched.remove(match)
                results[i] = match
            runs.append(run)
    return results, runs


# Expectations whose GX pandas implementation reads only whether values are null, equal or members
# of a set: on a column of str they report the same on pyarrow-backed strings as on Python objects.
ARROW_STRING_SAFE = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null", "expect_column_values_to_be_unique",
    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"})


def _arrow_strings(frame: pd.DataFrame, expectations: list[dict[str, Any]]) -> pd.DataFrame:
    """``frame`` with its object columns of str (and nulls) as pyarrow-backed strings, when every
    expectation on it is in ``ARROW_STRING_SAFE`` (with a value set of str only); else ``frame``.

    GX's pandas engine asks ``isna`` of a column once per metric, 3 times per expectation: on 1M
    Python strings each call is a Python-object scan (80-120 ms), on Arrow strings a look at the
    validity bitmap; ``isin`` and ``duplicated`` are Arrow kernels too. The conversion (~0.1 s per
    1M strings) is inside the time bench/validate.py measures and pays back within the first
    expectation."""
    import pandas as pd
    import pyarrow as pa

    for e in expectations:
        values = e.get("kwargs", {}).get("value_set")
        if e["type"] not in ARROW_STRING_SAFE or (values is not None and not all(isinstance(v, str) for v in values)):
            return frame
    if not len(frame) or not all(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes):
        return frame
    columns = {}
    for name in frame.columns:
        try:  # any value neither str nor null (None, NaN) raises: such a column stays as it is
            columns[name] = pd.arrays.ArrowStringArray(
                pa.array(frame[name].to_numpy(), type=pa.string(), from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return frame
    return pd.DataFrame(columns, index=frame.index)


def _is_result_of(result, expectation: dict[str, Any]) -> bool:
    config = result.expectation_config
    return config.type == expectation["type"] and all(  # GX stores 1 as 1.0, tuples as lists
        config.kwargs.get(k) == v or json.dumps(config.kwargs.get(k), default=str) == json.dumps(v, default=str)
        for k, v in expectation.get("kwargs", {}).items())


def _skip_decimal_scan_of_typed_arrays() -> None:
    """GX's pandas ``column.mean`` (and median, quantiles, ...) first asks, value by value in Python,
    whether the column holds ``decimal.Decimal`` objects: 0.8 s of 4.5 s for one float column of 1M
    rows (bench/validate.py --profile). Only an object array can hold one, so for a typed (float,
    int, ...) array the answer is ``False`` without looking; object arrays are still scanned. The
    check is replaced once per process, and it gives GX's own answer for every array."""
    import great_expectations.util as gx_util

    scan = gx_util.does_ndarray_contain_decimal_dtype
    if getattr(scan, "_mlops_pack_typed_skip", False):
        return

    def does_ndarray_contain_decimal_dtype(data):
        dtype = getattr(data, "dtype", None)
        return bool(scan(data)) if dtype is None or dtype.kind == "O" else False

    does_ndarray_contain_decimal_dtype._mlops_pack_typed_skip = True
    gx_util.does_ndarray_contain_decimal_dtype = does_ndarray_contain_decimal_dtype


@contextmanager
def _no_batch_fingerprint():
    """GX hashes every row of a pandas batch (under 1 GB) into a batch marker nothing here reads;
    the pack's data version is its own (core.storage). Off while validating."""
    import great_expectations.execution_engine.pandas_execution_engine as engine

    before = engine.HASH_THRESHOLD
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = before


def _store_and_build_docs(context, suite_name: str, results: list, first) -> None:
    """One validation result (all groups, in the suite's order) in the file context's store, then
    Data Docs built from it: one page per validation, as a checkpoint run would give."""
    import datetime as dt

    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run_id = RunIdentifier(run_name=suite_name, run_time=dt.datetime.now(dt.UTC))
    ordered = results
    successful = sum(bool(r.success) for r in ordered)
    combined = ExpectationSuiteValidationResult(
        success=successful == len(ordered), results=ordered, suite_name=suite_name,
        statistics={"evaluated_expectations": len(ordered), "successful_expectations": successful,
                    "unsuccessful_expectations": len(ordered) - successful,
                    "success_percent": 100.0 * successful / len(ordered) if ordered else None},
        meta={**first.meta, "run_id": run_id, "validation_time": run_id.run_time}, batch_id=first.batch_id)
    suite_id = ExpectationSuiteIdentifier(name=suite_name)
    context.validation_results_store.store_validation_results(
        suite_validation_result=combined, expectation_suite_identifier=suite_id,
        suite_validation_result_identifier=ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=first.batch_id))
    context.build_data_docs()


def publish_data_docs(result: dict[str, Any], target: Any) -> str | None:
    """Copy the local Data Docs site of ``result`` (built with ``docs_dir``) to storage folder ``target``
    (an ObjectStoragePath); returns the URI of its ``index.html``, or None when no docs were built.

    The site's pages link each other relatively, so it works wherever it is served from. Each file is
    written atomically; files of an older site at ``target`` that the new one lacks are left.
    """
    from mlops_pack.core.storage import write_bytes_atomic

    if not result.get("docs"):
        return None
    site = Path(result["docs"]).parent
    for path in sorted(site.rglob("*")):
        if path.is_file():
            destination = target
            for part in path.relative_to(site).parts:
                destination = destination / part
            destination.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(destination, path.read_bytes())
    return str(target / "index.html")


def _safe_data_docs(context, docs_dir: Path) -> None:
    """Rebuild Data Docs from neutralised results: GX inserts unexpected values into the HTML raw."""
    from mlops_pack.core.html_safety import neutralise_json_files

    if neutralise_json_files(docs_dir / "gx" / "uncommitted" / "validations"):
        context.build_data_docs()


def summarise_results(results: list, suite_name: str, docs_dir: Path | None) -> dict[str, Any]:
    """The JSON-able summary of GX expectation results: {success, evaluated, failed, failures, docs, suite}."""
    failures = []
    for r in results:
        if not r.success:
            cfg = r.expectation_config
            res = r.result or {}
            failures.append({
                "expectation": cfg.type,
                "column": cfg.kwargs.get("column"),
                "unexpected_percent": _round(res.get("unexpected_percent")),
                "observed": _jsonable(res.get("observed_value")),
                "sample": [_jsonable(v) for v in (res.get("partial_unexpected_list") or [])[:5]],
            })
    docs = None
    if docs_dir is not None:
        index = Path(docs_dir) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        docs = str(index) if index.exists() else None
    return {"success": all(r.success for r in results), "evaluated": len(results), "failed": len(failures),
            "failures": failures, "docs": docs, "suite": suite_name}


def _round(value):
    return None if value is None or not math.isfinite(float(value)) else round(float(value), 3)


def _jsonable(value):
    """XCom and asset extras are strict JSON: NaN and infinities become None, other objects strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers (Arrow-backed columns)
        return None
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return str(value)
