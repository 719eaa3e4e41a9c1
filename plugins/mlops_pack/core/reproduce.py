"""Exact re-training: what a training run records to be rebuilt, and how a rebuild is judged. No Airflow,
no MLflow.

Training records its inputs (``training_inputs``): the validated partitions of its window with their data
versions, the model section of the spec as it was (estimator or code reference, params, holdout fraction,
search), the record key, the seeds, the identity of the user's code and the versions of the libraries the
result depends on. The train task logs that record on its MLflow run (``reproduce/inputs.json``).

``mlops-pack reproduce`` (cli/reproduce.py) reads it back, checks each partition still holds the rows it
held (``partition_differences``), re-trains with the recorded model section, and compares the rebuilt
model's holdout predictions with the registered version's, bit for bit (``prediction_difference``). What
differs is named (``library_differences``, ``code_differences``); a rebuild counts as reproduced only when
the data is the same and the predictions are identical (``reproduced``).
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_pack.core.spec import PipelineSpec

FORMAT = 1
INPUTS_ARTIFACT = "reproduce/inputs.json"
# What a fitted scikit-learn model's predictions can depend on, beside the data, the params and the code.
LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "pyarrow", "joblib", "threadpoolctl", "skops", "mlflow",
             "airflow-mlops-pack")
SPLIT_SEED = 0  # the stratified holdout's seed (core/train.stratified_split)


def library_versions() -> dict[str, str]:
    """Installed versions of Python and of ``LIBRARIES`` (``missing`` for one that is not installed)."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def training_inputs(spec: PipelineSpec, partitions: list[dict[str, Any]], *, train_version: str,
                    holdout_version: str, code: dict[str, str] | None,
                    search: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of one training run that ``mlops-pack reproduce`` rebuilds it from.

    ``partitions`` are the manifests of the window's validated partitions (oldest first), ``train_version``
    and ``holdout_version`` the data versions of the sets the split made, ``code`` the identity of
    ``model.pipeline`` (core/user_code.identity), ``search`` a search's result (best params)."""
    model = spec.model.model_dump(mode="json")
    return {
        "format": FORMAT, "pipeline": spec.name, "spec_path": str(spec.spec_path), "model": model,
        "record_key": spec.source.key,
        "partitions": [{"key": str(m["partition"]), "version": str(m["version"]), "rows": int(m.get("rows", 0)),
                        "folder": str(m.get("folder", ""))} for m in partitions],
        "train_version": train_version, "holdout_version": holdout_version,
        "seeds": {"split": SPLIT_SEED if spec.model.stratify else None,
                  "estimator": spec.model.params.get("random_state"),
                  "search": spec.model.search.seed if spec.model.search else None},
        "search_best_params": dict(search["best_params"]) if search else None,
        "code": dict(code or {}), "libraries": library_versions(),
    }


def partition_differences(recorded: list[dict[str, Any]], found: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per recorded partition whose rows are no longer the ones trained on.

    ``found`` maps a partition key to what storage holds now: ``manifest`` (the version its manifest names,
    None when there is no complete partition), ``rows_version`` (the data version of the rows read back from
    its data file, None when unreadable), ``file`` (that data file) and ``error`` (why it cannot be read)."""
    differences = []
    for part in recorded:
        key, want = part["key"], part["version"]
        now = found.get(key) or {}
        if now.get("manifest") is None:
            differences.append({"partition": key, "recorded": want, "found": None,
                                "problem": f"partition {key} is gone: {now.get('error') or 'no manifest'}"})
        elif now["manifest"] != want:
            differences.append({"partition": key, "recorded": want, "found": now["manifest"], "file": now.get("file"),
                                "problem": f"partition {key} was replaced: its manifest names data version "
                                           f"{now['manifest']}, training read {want}"})
        elif now.get("rows_version") != want:
            differences.append({"partition": key, "recorded": want, "found": now.get("rows_version"),
                                "file": now.get("file"),
                                "problem": f"partition {key}: the rows in {now.get('file')} hash to "
                                           f"{now.get('rows_version') or 'nothing readable'} "
                                           f"({now.get('error') or 'changed in place'}), its manifest and training "
                                           f"say {want}"})
    return differences


def library_differences(recorded: dict[str, str], now: dict[str, str]) -> list[dict[str, str]]:
    """Libraries (and Python) whose installed version is not the recorded one."""
    return [{"library": name, "recorded": recorded[name], "now": now.get(name, "missing")}
            for name in sorted(recorded) if now.get(name, "missing") != recorded[name]]


def code_differences(recorded: dict[str, str], now: dict[str, str]) -> list[dict[str, str]]:
    """Identity tags of the user's code (``code.sha256``, ``code.git_commit``, ``code.package`` ...) that
    differ; the file's location (``code.file``) may move without the code changing."""
    keys = sorted((set(recorded) | set(now)) - {"code.file"})
    return [{"tag": k, "recorded": recorded.get(k, ""), "now": now.get(k, "")} for k in keys
            if recorded.get(k, "") != now.get(k, "")]


def prediction_difference(registered: Any, rebuilt: Any) -> dict[str, Any]:
    """Compare two predictions of the same rows bit for bit: {identical, rows, differing_rows, max_abs_diff}.

    Each is an array, or a (labels, probabilities) pair for a classifier; probabilities count too."""
    import numpy as np

    def parts(p: Any) -> list[Any]:
        return [np.asarray(x) for x in (p if isinstance(p, tuple) else (p,)) if x is not None]

    a, b = parts(registered), parts(rebuilt)
    rows = len(a[0]) if a else 0
    if len(a) != len(b) or any(x.shape != y.shape or x.dtype != y.dtype for x, y in zip(a, b, strict=True)):
        shapes = ([(x.shape, str(x.dtype)) for x in a], [(y.shape, str(y.dtype)) for y in b])
        return {"identical": False, "rows": rows, "differing_rows": rows, "max_abs_diff": None,
                "problem": f"predictions of different shape or type: registered {shapes[0]}, rebuilt {shapes[1]}"}
    differing = np.zeros(rows, dtype=bool)
    max_diff = 0.0
    for x, y in zip(a, b, strict=True):
        # Bit for bit: compare the bytes, so that -0.0 vs 0.0 and NaN payloads count as differences too.
        x2, y2 = (np.ascontiguousarray(v).reshape(rows, max(1, v.size // max(rows, 1))) for v in (x, y))
        same = ((x2.view(np.uint8) == y2.view(np.uint8)).all(axis=1) if x.dtype.kind in "fiub"
                else (x2 == y2).all(axis=1))
        differing |= ~same
        if x.dtype.kind in "fiu" and (~same).any():
            max_diff = max(max_diff, float(np.nanmax(np.abs(x.astype(float) - y.astype(float)))))
    count = int(differing.sum())
    return {"identical": count == 0, "rows": rows, "differing_rows": count, "max_abs_diff": max_diff if count else 0.0}


def reproduced(report: dict[str, Any]) -> bool:
    """A version is reproduced when its data is unchanged and the rebuild predicts its holdout bit for bit."""
    predictions = report.get("predictions") or {}
    return not report.get("data") and not report.get("problems") and bool(predictions.get("identical"))


def render_text(report: dict[str, Any]) -> str:
    """The report as lines a person reads in a terminal: the verdict first, then each difference."""
    name, version = report.get("pipeline"), report.get("version")
    ok = reproduced(report)
    lines = [f"{name} v{version}: {'REPRODUCED' if ok else 'NOT REPRODUCED'}"]
    predictions = report.get("predictions")
    if predictions:
        if predictions.get("identical"):
            lines.append(f"  holdout predictions: identical, bit for bit, on {predictions['rows']} rows")
        else:
            lines.append(f"  holdout predictions: {predictions['differing_rows']} of {predictions['rows']} rows differ "
                         f"(largest difference {predictions.get('max_abs_diff')})"
                         + (f"; {predictions['problem']}" if predictions.get("problem") else ""))
    checked = report.get("partitions_checked") or []
    if checked:
        lines.append(f"  data: {len(checked)} partition(s) checked: {', '.join(checked)}")
    for d in report.get("data") or []:
        lines.append(f"  data differs: {d['problem']}")
    for d in report.get("libraries") or []:
        lines.append(f"  library differs: {d['library']} {d['recorded']} when trained, {d['now']} now")
    for d in report.get("code") or []:
        lines.append(f"  code differs: {d['tag']} {d['recorded'] or '(none)'} when trained, {d['now'] or '(none)'} now")
    for problem in report.get("problems") or []:
        lines.append(f"  problem: {problem}")
    if report.get("metrics"):
        shown = ", ".join(f"{k} {v['registered']:.6g} -> {v['rebuilt']:.6g}" for k, v in report["metrics"].items())
        lines.append(f"  holdout metrics (registered -> rebuilt): {shown}")
    return "\n".join(lines)
