"""What is validated and what is trained: expectations, features, the estimator or the user's own pipeline
function, and a hyperparameter search. Dotted paths are checked from module source text: nothing is imported."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops_pack.core.metrics import METRICS
from mlops_pack.core.spec.base import _Strict


class ExpectationSpec(_Strict):
    type: str = Field(pattern=r"^expect_[a-z0-9_]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ValidationSpec(_Strict):
    expectations: list[ExpectationSpec] = Field(default_factory=list)
    suite_file: str | None = Field(default=None, description="GX suite JSON, relative to the spec file")

    @model_validator(mode="after")
    def _something_to_check(self) -> ValidationSpec:
        if not self.expectations and not self.suite_file:
            raise ValueError("give expectations or a suite_file: validation with no checks passes anything")
        return self


class FeaturesSpec(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class RangeSpec(_Strict):
    """A numeric range of a search space: drawn uniformly (of the log with ``log``), rounded with ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if not self.low < self.high:
            raise ValueError(f"range low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class SearchSpec(_Strict):
    """Hyperparameter search: trials as mapped tasks on the training queue, scored by cross-validation on the
    training rows (never the holdout); the best is refit on the whole training set (core/search.py)."""

    method: Literal["grid", "random", "tpe"] = Field(default="grid", description="grid: every combination of "
                                                     "the listed values; random: seeded draws; tpe: Optuna's TPE "
                                                     "(Bayesian), each trial learning from the finished ones")
    space: dict[str, list[Any] | RangeSpec] = Field(min_length=1, description="parameter -> values to try, or a "
                                                    "range {low, high, log, integer} (random, tpe); a parameter "
                                                    "of the estimator by its name, or any set_params name of the "
                                                    "pipeline (step__param)")
    max_trials: int = Field(default=20, ge=1, le=500, description="trials run (random, tpe); a grid must not "
                            "have more combinations")
    trial_timeout_seconds: float = Field(default=600, gt=0, description="a trial still running after this is "
                                         "recorded as timed out and the search goes on")
    parallelism: int = Field(default=2, ge=1, le=64, description="trials running at once (on the training queue's "
                             "workers)")
    metric: str | None = Field(default=None, description="metric the trials are ranked on (core/metrics.py); "
                               "default: the gate's primary metric")
    cv: int = Field(default=3, ge=2, le=20, description="folds: time-ordered with order_by (no fold trains on "
                    "a row newer than one it is scored on), stratified for classification, else shuffled k-fold")
    seed: int = Field(default=0, description="seeds the folds, random draws and TPE")

    @model_validator(mode="after")
    def _space_fits_the_method(self) -> SearchSpec:
        for name, dim in self.space.items():
            if isinstance(dim, list) and not dim:
                raise ValueError(f"model.search.space.{name}: lists no values")
            if self.method == "grid" and not isinstance(dim, list):
                raise ValueError(f"model.search.space.{name}: a grid search needs a list of values, not a range")
        if self.method == "grid":
            size = 1
            for dim in self.space.values():
                size *= len(dim)
            if size > self.max_trials:
                raise ValueError(f"model.search: the grid has {size} combinations, more than max_trials "
                                 f"{self.max_trials}; raise max_trials or use method random or tpe")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"model.search.metric: unknown metric {self.metric!r}, use one of {sorted(METRICS)}")
        return self


class ModelSpec(_Strict):
    task: Literal["regression", "classification"] = "regression"
    target: str
    features: FeaturesSpec
    order_by: str | None = Field(default=None, description="column that orders rows in time for the holdout")
    estimator: str | None = Field(default=None, description="dotted path of a scikit-learn estimator class (or "
                                  "of a package [mlops] allowed_model_modules names), "
                                  "behind the pack's preprocessing (impute + scale numeric, impute + one-hot "
                                  "categorical); give this or pipeline")
    pipeline: str | None = Field(default=None, description="your own model code instead: 'package.module:function' "
                                 "(an installed package, or a module under the spec's folder or its parent, e.g. "
                                 "include/), called as function(numeric=[...], categorical=[...], **params) and "
                                 "returning an unfitted scikit-learn estimator or Pipeline; other installed packages only when "
                                 "[mlops] allowed_model_modules names them; imported when a task "
                                 "trains, never at DAG parse (`mlops-pack check` calls it)")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the estimator, or of "
                                   "the pipeline function")
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1, description="share of the rows held out for the "
                                    "gate: the newest by order_by, or a stratified sample with stratify")
    stratify: bool = Field(default=False, description="classification: hold out a random sample with the "
                           "class proportions of the window (seeded), instead of the newest rows")
    window_partitions: int = Field(default=5, ge=1, description="latest validated partitions to train on")
    search: SearchSpec | None = None

    @field_validator("estimator", "pipeline")
    @classmethod
    def _path_names_code(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An estimator class path, or a ``package.module:function`` reference, of an allowed module
        (``model_module_problem``; the load's validation context names the configured prefixes and the
        project's folders), checked from source text."""
        if value is None:
            return None
        estimator = info.field_name == "estimator"
        context = info.context or {}
        problem = ((_estimator_shape_problem(value) if estimator else pipeline_ref_problem(value))
                   or model_module_problem(info.field_name, value, tuple(context.get("model_modules", ())),
                                           list(context.get("code_dirs", ())))  # before any module is located
                   or (estimator_path_problem(value) if estimator else None))
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _estimator_or_pipeline(self) -> ModelSpec:
        if (self.estimator is None) == (self.pipeline is None):
            raise ValueError("model: give either estimator (the pack's preprocessing + that estimator) or pipeline "
                             "(your own function), not " + ("both" if self.estimator else "neither"))
        return self

    @property
    def code(self) -> str:
        """What makes the model, for messages and the run's params: the pipeline function or the estimator."""
        return str(self.pipeline or self.estimator)

    @model_validator(mode="after")
    def _stratify_needs_classes(self) -> ModelSpec:
        if self.stratify and self.task != "classification":
            raise ValueError("model.stratify: a stratified holdout needs model.task 'classification'")
        return self

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> ModelSpec:
        if not self.features.all:
            raise ValueError("model.features lists no columns")
        if self.target in self.features.all:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        return self


def _estimator_shape_problem(dotted: str) -> str | None:
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", class_name):
        return f"estimator {dotted!r} must be a dotted path like sklearn.linear_model.Ridge"
    return None


@functools.lru_cache(maxsize=64)
def estimator_path_problem(dotted: str) -> str | None:
    """Why ``dotted`` cannot name an estimator class, or None; checks source text, never imports it."""
    shape = _estimator_shape_problem(dotted)
    if shape:
        return shape
    module_name, _, class_name = dotted.rpartition(".")
    source = _module_source(module_name)
    if source is None:
        return f"estimator {dotted!r}: module {module_name!r} is not installed"
    if not re.search(rf"\b{re.escape(class_name)}\b", source):
        return f"estimator {dotted!r}: module {module_name!r} has no {class_name!r}"
    return None


def pipeline_ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not of the form ``package.module:function``, or None (checks text only, imports nothing)."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", ref):
        return f"pipeline {ref!r} must be 'package.module:function' (e.g. my_models.price:build)"
    return None


SKLEARN = "sklearn"  # always allowed for model.estimator and model.pipeline


def code_module(field: str, ref: str) -> str:
    """The module ``model.estimator`` (``package.module.Class``) or ``model.pipeline``
    (``package.module:function``) names."""
    return ref.partition(":")[0] if field == "pipeline" else ref.rpartition(".")[0]


def model_module_problem(field: str, ref: str, allowed: tuple[str, ...], code_dirs: list[Path]) -> str | None:
    """Why model code from ``ref`` may not run, or None. Allowed: scikit-learn, the module prefixes of
    ``allowed`` (``[mlops] allowed_model_modules``) and the project's own modules, found under the
    spec's folder or its parent (include/) and not shadowing an installed module of the same name.
    Anything else (``subprocess.Popen``, ``os.system``) could run any command at training time.
    Checks names and file locations only: nothing is imported."""
    module = code_module(field, ref)
    prefixes = [SKLEARN, *(p.strip().rstrip(".") for p in allowed if p.strip().rstrip("."))]
    if any(module == p or module.startswith(p + ".") for p in prefixes) or _own_module(module, code_dirs):
        return None
    return (f"{ref!r}: module {module!r} is not allowed for model code; allowed: "
            f"{', '.join(p + '.*' for p in prefixes)} ([mlops] allowed_model_modules adds module prefixes) and "
            f"the project's own modules under {', '.join(str(d) for d in code_dirs)}")


def _own_module(module: str, code_dirs: list[Path]) -> bool:
    """Is ``module``'s top package found under ``code_dirs``, and is that what an import would load?"""
    from importlib.machinery import PathFinder

    top = module.split(".")[0]
    own = PathFinder.find_spec(top, [str(d) for d in code_dirs])
    if own is None:
        return False
    try:
        installed = importlib.util.find_spec(top)  # a top-level find_spec imports nothing
    except (ImportError, ValueError):
        installed = None
    if installed is None:
        return True
    where = [*(installed.submodule_search_locations or []), installed.origin or ""]
    return any(Path(w).resolve().is_relative_to(d.resolve()) for w in where if w for d in code_dirs)


def _module_source(module_name: str) -> str | None:
    top, *rest = module_name.split(".")
    found = importlib.util.find_spec(top)  # a top-level find_spec does not import the package
    if found is None or not found.origin:
        return None
    path = Path(found.origin).parent if found.submodule_search_locations else Path(found.origin)
    for part in rest:
        if (path / part / "__init__.py").exists():
            path = path / part
        elif (path / f"{part}.py").exists():
            path = path / f"{part}.py"
        else:
            return None
    file = path / "__init__.py" if path.is_dir() else path
    try:
        return file.read_text(encoding="utf-8", errors="replace")
    except OSError:  # a frozen or built-in module has no source file to read
        return None
