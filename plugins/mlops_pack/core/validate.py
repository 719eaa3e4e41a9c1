"""Run a Great Expectations suite on a DataFrame and return a small JSON-able result.

The suite comes from the spec's expectations and/or a GX suite JSON file. An ephemeral GX context
is used by default; pass ``docs_dir`` to also build Data Docs (an HTML page per validation).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class ValidationFailed(RuntimeError):
    """The data did not meet its expectations; ``result`` holds the JSON-able summary."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


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

    # GX draws tqdm progress bars on stderr, which a task log records as ERROR lines: none in a task.
    os.environ.setdefault("TQDM_DISABLE", "1")
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if docs_dir is not None:
        context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    else:
        context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_or_update_pandas(name=f"{suite_name}_source")
    asset = source.add_dataframe_asset(name=f"{suite_name}_frame")
    batch_definition = asset.add_batch_definition_whole_dataframe(f"{suite_name}_batch")
    suite = gx.ExpectationSuite(name=suite_name)
    for e in expectations:
        suite.add_expectation_configuration(ExpectationConfiguration(type=e["type"], kwargs=e.get("kwargs", {})))
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_definition, suite=suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="docs")] if docs_dir is not None else []
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(name=f"{suite_name}_checkpoint", validation_definitions=[definition], actions=actions))
    run = checkpoint.run(batch_parameters={"dataframe": df})
    if docs_dir is not None:
        _safe_data_docs(context, Path(docs_dir))
    return summarise(run, suite_name, docs_dir)


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


def summarise(run, suite_name: str, docs_dir: Path | None) -> dict[str, Any]:
    failures = []
    evaluated = 0
    for validation in run.run_results.values():
        for r in validation.results:
            evaluated += 1
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
    return {"success": bool(run.success), "evaluated": evaluated, "failed": len(failures), "failures": failures,
            "docs": docs, "suite": suite_name}


def _round(value):
    return None if value is None or not math.isfinite(float(value)) else round(float(value), 3)


def _jsonable(value):
    """XCom and asset extras are strict JSON: NaN and infinities become None, other objects strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return str(value)
