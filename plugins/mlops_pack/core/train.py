"""Build, fit and evaluate the scikit-learn pipeline a spec describes. No MLflow, no Airflow."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import pandas as pd
    from sklearn.pipeline import Pipeline

    from mlops_pack.core.spec import ModelSpec


class TrainingError(MlopsError, RuntimeError):
    """Training cannot start or produce a model; the message names the column or setting."""


@dataclass
class TrainedModel:
    pipeline: Pipeline
    train: pd.DataFrame
    holdout: pd.DataFrame
    metrics: dict[str, float]
    search: dict[str, Any] | None = None  # best params and CV score when the spec asks for a search
    code: dict[str, str] | None = None  # identity of model.pipeline's code (core/user_code.identity)


def load_estimator(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise TrainingError(f"model.estimator {dotted!r} cannot be imported: {exc}") from exc


def build_pipeline(model: ModelSpec, code_dirs: Iterable[Path] = ()) -> Any:
    """The spec's unfitted model: ``model.pipeline``'s own (core/user_code.py, looked for also under
    ``code_dirs``), else the pack's default (``default_pipeline``)."""
    if model.pipeline:
        from mlops_pack.core.user_code import build

        return build(model, code_dirs)
    return default_pipeline(model)


def code_identity(model: ModelSpec) -> dict[str, str] | None:
    """Tags naming the user code that built the model (after ``build_pipeline``); None for the default."""
    if not model.pipeline:
        return None
    from mlops_pack.core.user_code import identity

    return identity(model.pipeline)


def default_pipeline(model: ModelSpec) -> Pipeline:
    """Preprocessing for numeric and categorical features, then the spec's estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if model.features.numeric:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numeric, list(model.features.numeric)))
    if model.features.categorical:
        categorical = Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ])
        transformers.append(("categorical", categorical, list(model.features.categorical)))
    try:
        estimator = load_estimator(model.estimator)(**model.params)
    except TypeError as exc:
        raise TrainingError(f"model.params {model.params} do not fit {model.estimator}: {exc}") from exc
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", estimator)])


def time_split(df: pd.DataFrame, order_by: str | None, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the older rows, hold out the newest ``holdout_fraction`` (stable order within ties)."""
    ordered = df.sort_values(order_by, kind="stable") if order_by else df
    cut = int(round(len(ordered) * (1 - holdout_fraction)))
    if cut < 10 or len(ordered) - cut < 10:
        raise TrainingError(f"{len(df)} rows are too few to train and hold out {holdout_fraction:.0%}")
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def stratified_split(df: pd.DataFrame, target: str, holdout_fraction: float,
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a seeded random ``holdout_fraction`` of the rows with each class in the window's proportion."""
    from sklearn.model_selection import train_test_split

    counts = df[target].value_counts()
    rare = counts[counts < 2]
    if len(rare):
        raise TrainingError(f"model.stratify: class(es) {sorted(map(str, rare.index))} have a single row; a "
                            "stratified holdout needs at least 2 rows per class")
    held = int(round(len(df) * holdout_fraction))
    if len(df) - held < 10 or held < max(10, len(counts)):
        raise TrainingError(f"{len(df)} rows are too few to train and hold out {holdout_fraction:.0%} "
                            f"stratified over {len(counts)} classes")
    train, holdout = train_test_split(df, test_size=held, stratify=df[target], random_state=seed)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def task_metrics(task: str, has_proba: bool) -> list[str]:
    """The metrics computed on a holdout for ``task``: every one that fits it (the probability-based ones
    only for a model with ``predict_proba``)."""
    from mlops_pack.core.metrics import METRICS, metrics_for

    return [m for m in metrics_for(task) if has_proba or METRICS[m].needs != "proba"]


def evaluate(pipeline, frame: pd.DataFrame, model: ModelSpec) -> dict[str, float]:
    """Metrics of ``pipeline`` on ``frame`` for the spec's task (core/metrics.py defines each); a
    classifier also gets ``precision.<class>``, ``recall.<class>`` and ``support.<class>``."""
    from mlops_pack.core.metrics import compute, per_class_report, predictions_of

    y_true = frame[model.target].to_numpy()
    x = frame[model.features.all]
    has_proba = model.task == "classification" and hasattr(pipeline, "predict_proba")
    predicted = predictions_of(pipeline, x, model.task, has_proba)
    scores = {m: compute(m, y_true, predicted) for m in task_metrics(model.task, has_proba)}
    if model.task == "classification":
        scores.update(per_class_report(y_true, predicted.labels))
    return scores


def check_gate_metrics(pipeline: Any, model: ModelSpec, gate_metrics: list[str]) -> None:
    """TrainingError, before anything is registered, when a gate metric needs what the model lacks."""
    from mlops_pack.core.metrics import METRICS

    proba = [m for m in gate_metrics if m in METRICS and METRICS[m].needs == "proba"]
    if proba and not hasattr(pipeline, "predict_proba"):
        raise TrainingError(f"promotion.metrics {proba} need class probabilities but {model.code} has no "
                            "predict_proba; gate on accuracy, balanced_accuracy or f1, or use a probabilistic "
                            "estimator")


def check_columns(df: pd.DataFrame, model: ModelSpec, what: str) -> None:
    needed = [model.target, *model.features.all, *([model.order_by] if model.order_by else [])]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TrainingError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def split_window(df: pd.DataFrame, model: ModelSpec, key: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and holdout rows of the window ``df``: the older rows and the newest (or, with
    ``model.stratify``, a stratified random holdout).

    With the record ``key`` the window is clean by construction: one row per key (the last, i.e.
    from the newest partition, wins) and a holdout that shares no key with training (checked).
    """
    from mlops_pack.core.partitions import check_disjoint, dedupe_latest

    check_columns(df, model, "training data")
    if key is not None:
        if key not in df.columns:
            raise TrainingError(f"training data lacks the record key {key!r}; it has {list(df.columns)}")
        df = dedupe_latest(df.dropna(subset=[key]), key)
    labelled = df.dropna(subset=[model.target])
    if model.stratify:
        train, holdout = stratified_split(labelled, model.target, model.holdout_fraction)
    else:
        train, holdout = time_split(labelled, model.order_by, model.holdout_fraction)
    if key is not None:
        check_disjoint(train, holdout, key)
    return train, holdout


def fit(df: pd.DataFrame, model: ModelSpec, key: str | None = None,
        gate_metrics: list[str] | None = None, code_dirs: Iterable[Path] = ()) -> TrainedModel:
    """Fit the spec's pipeline on the older rows of ``df`` and evaluate it on the newest (``split_window``)."""
    train, holdout = split_window(df, model, key)
    return fit_split(train, holdout, model, gate_metrics, code_dirs)


def fit_split(train: pd.DataFrame, holdout: pd.DataFrame, model: ModelSpec, gate_metrics: list[str] | None = None,
              code_dirs: Iterable[Path] = (), search: dict[str, Any] | None = None) -> TrainedModel:
    """Fit the spec's pipeline on ``train`` (with a search's ``best_params`` set) and evaluate it on ``holdout``."""
    pipeline = build_pipeline(model, code_dirs)
    if search is not None:
        pipeline = with_params(pipeline, search["best_params"])
    pipeline.fit(train[model.features.all], train[model.target])
    check_gate_metrics(pipeline, model, list(gate_metrics or []))
    return TrainedModel(pipeline, train, holdout, evaluate(pipeline, holdout, model), search, code_identity(model))


def with_params(pipeline: Any, params: dict[str, Any]) -> Any:
    """``pipeline`` with search ``params`` set (an estimator parameter by its name, or any set_params name)."""
    from mlops_pack.core.search import SearchFailed, estimator_params

    try:
        names = estimator_params(list(params), list(pipeline.get_params(deep=True)))
    except SearchFailed as exc:
        raise TrainingError(str(exc)) from exc
    return pipeline.set_params(**{names[k]: v for k, v in params.items()})


def quiet_skops_module_lookup() -> None:
    """Keep skops' module lookup from writing one Airflow deprecation warning per module to the task log.

    skops finds the module of a function-like object (numpy ufuncs such as ``zetac``) by getattr on
    every module in sys.modules. In a task that includes Airflow's deprecated lazy attributes
    (``airflow.utils.timezone`` ...), each answering with a DeprecatedImportWarning (a FutureWarning):
    ~1,100 lines per log of every task that dumps or loads a model (train, evaluate, promote, score).
    skops itself only silences DeprecationWarning there, so this filter finishes its job for warnings
    raised from that lookup, and stays for the whole process (MLflow dumps and loads with skops).
    skops runs that lookup at import already (for scipy's ufuncs), so call this before importing it.
    """
    import warnings

    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"skops\.io\._utils")


def trusted_types(pipeline: Any) -> list[str]:
    """Types skops must trust to load this pipeline: the ones it holds, which we built ourselves."""
    quiet_skops_module_lookup()
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(pipeline)))
