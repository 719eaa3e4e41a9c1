"""``mlops-pack reproduce <pipeline> <version>``: re-train a registered version from what its training
recorded and say whether the result is the same model (core/reproduce.py decides; this gathers).

Reads the version's run record ``reproduce/inputs.json`` (written by the train task), checks each
validated partition of its window still holds the rows trained on (manifest version and a fresh hash of
the rows in its data file), re-trains with the recorded model section (params, seeds, search result,
user code), predicts the version's holdout with both models and compares bit for bit. The report is
printed and kept in storage, ``reports/reproduce/v<version>/report.json``, and the version's model card is
rewritten to show it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mlops_pack.core.errors import MlopsError


class ReproduceError(MlopsError, RuntimeError):
    """The version cannot be re-trained at all (unknown version, no recorded inputs); the message says why."""


def report_path(version: str) -> str:
    """Where in the pipeline's storage the last reproduce report of ``version`` is kept."""
    return f"reports/reproduce/v{version}/report.json"


def reproduce(pipeline: str, version: str) -> dict[str, Any]:
    """The reproduce report of ``pipeline`` version ``version`` (also written to storage)."""
    from mlops_pack.core.reproduce import code_differences, library_differences, library_versions, reproduced
    from mlops_pack.core.storage import write_json
    from mlops_pack.hooks.mlflow import MlflowHook
    from mlops_pack.hooks.storage import PipelineStorageHook

    hook, storage = MlflowHook(), PipelineStorageHook(pipeline)
    tags, run_id, inputs = _recorded(hook, pipeline, version)
    report: dict[str, Any] = {"pipeline": pipeline, "version": str(version), "run_id": run_id,
                              "checked_at": dt.datetime.now(dt.UTC).isoformat(),
                              "partitions_checked": [p["key"] for p in inputs["partitions"]], "problems": [],
                              "libraries": library_differences(inputs["libraries"], library_versions())}
    frames, report["data"] = _check_partitions(storage, inputs["partitions"])
    if len(frames) == len(inputs["partitions"]):
        rebuilt = _retrain(storage, inputs, frames, report)
        report["code"] = code_differences(inputs.get("code") or {}, rebuilt.code or {})
        _compare(hook, storage, pipeline, version, tags, inputs, rebuilt, report)
    else:
        report["code"] = []
        report["problems"].append("not re-trained: a partition of the window cannot be read")
    report["reproduced"] = reproduced(report)
    write_json(storage.root / report_path(version), report)
    _refresh_card(hook, storage, inputs, str(version))
    return report


def _refresh_card(hook: Any, storage: Any, inputs: dict[str, Any], version: str) -> None:
    """The version's model card, rewritten to show this check (its spec gives the gate's slices)."""
    import logging

    from mlops_pack.core.spec import SpecError, load_spec
    from mlops_pack.operators.base import write_model_card

    log = logging.getLogger("mlops_pack.reproduce")
    try:
        spec = load_spec(inputs["spec_path"])
    except SpecError as exc:
        log.warning("Model card of v%s not rewritten: the spec it was trained with is gone (%s)", version, exc)
        return
    write_model_card(hook, storage, spec, version, log)


def _recorded(hook: Any, pipeline: str, version: str) -> tuple[dict[str, str], str, dict[str, Any]]:
    """(version tags, run id, the run's recorded training inputs)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from mlops_pack.core.reproduce import INPUTS_ARTIFACT

    try:
        found = hook.client.get_model_version(pipeline, str(version))
    except MlflowException as exc:
        raise ReproduceError(f"{pipeline} has no version {version} in {hook.connection.tracking_uri}: "
                             f"{exc.message}") from None
    try:
        inputs = mlflow.artifacts.load_dict(f"runs:/{found.run_id}/{INPUTS_ARTIFACT}")
    except (MlflowException, OSError) as exc:
        raise ReproduceError(f"{pipeline} v{version} (run {found.run_id}) has no {INPUTS_ARTIFACT}: it was trained "
                             f"before training recorded its inputs, so it cannot be rebuilt ({exc})") from None
    return dict(found.tags), found.run_id, inputs


def _check_partitions(storage: Any, recorded: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """(the frames of the readable partitions, oldest first; what differs from the record)."""
    from mlops_pack.core.reproduce import partition_differences
    from mlops_pack.core.storage import StorageError, data_version, read_manifest, read_partition

    frames, found = [], {}
    for part in recorded:
        folder = storage.partition("validated", part["key"])
        try:
            manifest = read_manifest(folder)
        except StorageError as exc:
            found[part["key"]] = {"manifest": None, "error": str(exc)}
            continue
        now = {"manifest": str(manifest["version"]), "file": str(manifest.get("uri"))}
        try:
            frame = read_partition(folder)
            now["rows_version"] = data_version(frame)
            frames.append(frame)
        except StorageError as exc:
            now.update({"rows_version": None, "error": str(exc)})
        found[part["key"]] = now
    return frames, partition_differences(recorded, found)


def _retrain(storage: Any, inputs: dict[str, Any], frames: list[Any], report: dict[str, Any]) -> Any:
    """The model re-trained on ``frames`` with the recorded model section, split as training split it."""
    import pandas as pd

    from mlops_pack.core.spec.model import ModelSpec
    from mlops_pack.core.storage import data_version
    from mlops_pack.core.train import fit_split, split_window

    model = ModelSpec.model_validate(inputs["model"])
    train, holdout = split_window(pd.concat(frames, ignore_index=True), model, inputs["record_key"])
    for name, frame, want in (("training set", train, inputs["train_version"]),
                              ("holdout set", holdout, inputs["holdout_version"])):
        got = data_version(frame)
        if got != want and not report["data"]:  # with a partition named already, this follows from it
            report["data"].append({"partition": name, "recorded": want, "found": got,
                                   "problem": f"the {name} the window splits into hashes to {got}, training had {want}"})
    folder = Path(inputs["spec_path"]).resolve().parent
    search = {"best_params": inputs["search_best_params"]} if inputs.get("search_best_params") else None
    return fit_split(train, holdout, model, code_dirs=[folder, folder.parent], search=search)


def _compare(hook: Any, storage: Any, pipeline: str, version: str, tags: dict[str, str], inputs: dict[str, Any],
             rebuilt: Any, report: dict[str, Any]) -> None:
    """Both models' predictions of the version's recorded holdout, compared bit for bit; holdout metrics."""
    from mlops_pack.core.reproduce import prediction_difference
    from mlops_pack.core.spec.model import ModelSpec
    from mlops_pack.core.storage import StorageError, read_partition
    from mlops_pack.core.train import evaluate

    model = ModelSpec.model_validate(inputs["model"])
    try:
        holdout = read_partition(storage.path(tags["holdout_uri"]).parent)
    except (KeyError, StorageError) as exc:
        report["problems"].append(f"the version's recorded holdout cannot be read: {exc}")
        return
    registered = hook.load_model(pipeline, version)
    x = holdout[model.features.all]
    report["predictions"] = prediction_difference(_predict(registered, x, model.task),
                                                  _predict(rebuilt.pipeline, x, model.task))
    old, new = evaluate(registered, holdout, model), evaluate(rebuilt.pipeline, holdout, model)
    report["metrics"] = {k: {"registered": old[k], "rebuilt": new[k]} for k in old
                         if k in new and "." not in k}


def _predict(model: Any, x: Any, task: str) -> Any:
    if task == "classification" and hasattr(model, "predict_proba"):
        return model.predict(x), model.predict_proba(x)
    return model.predict(x)
