"""A data scientist's own model code (``model.pipeline: package.module:function``): found, called, checked
and identified. No Airflow, no MLflow.

The function is imported only when a task trains (or ``mlops-pack check`` asks), never at DAG parse. It
is called as ``function(numeric=[...], categorical=[...], **model.params)`` and returns an unfitted
scikit-learn estimator or Pipeline that takes the spec's feature columns as a DataFrame. It is found on
``sys.path`` (an installed package) or under the spec's folder and its parent (the project's include/).
What ran is recorded (``identity``): the module file's digest, the distribution's version when the
module belongs to an installed one, and the git commit when the file is in a git work tree.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mlops_pack.core.spec import ModelSpec

class UserCodeError(MlopsError, ValueError):
    """``model.pipeline`` cannot be imported, called, or returned something that is not an estimator."""


def import_function(ref: str, code_dirs: Iterable[Path] = ()) -> Callable[..., Any]:
    """The function ``ref`` names; ``code_dirs`` are added to sys.path (after what is there) first."""
    from mlops_pack.core.spec import pipeline_ref_problem

    problem = pipeline_ref_problem(ref)
    if problem:
        raise UserCodeError(f"model.pipeline: {problem}")
    for folder in code_dirs:
        if str(folder) not in sys.path:
            sys.path.append(str(folder))
    module_name, _, name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything on import
        raise UserCodeError(f"model.pipeline {ref!r}: module {module_name!r} cannot be imported: "
                            f"{type(exc).__name__}: {exc}") from exc
    function = getattr(module, name, None)
    if function is None:
        raise UserCodeError(f"model.pipeline {ref!r}: module {module_name!r} has no {name!r}")
    if not callable(function):
        raise UserCodeError(f"model.pipeline {ref!r}: {name!r} is a {type(function).__name__}, not a function")
    return function


def build(model: ModelSpec, code_dirs: Iterable[Path] = ()) -> Any:
    """The unfitted estimator ``model.pipeline`` returns for the spec's columns (checked: ``check``)."""
    ref = str(model.pipeline)
    function = import_function(ref, code_dirs)
    try:
        built = function(numeric=list(model.features.numeric), categorical=list(model.features.categorical),
                         **model.params)
    except Exception as exc:  # noqa: BLE001 - the user's function may raise anything
        raise UserCodeError(f"model.pipeline {ref!r} failed when called with numeric=, categorical= and "
                            f"model.params {sorted(model.params)}: {type(exc).__name__}: {exc}") from exc
    check(built, ref, model.task)
    return built


def check(built: Any, ref: str, task: str) -> None:
    """UserCodeError unless ``built`` is a scikit-learn estimator (or Pipeline) fit for ``task``."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if not isinstance(built, BaseEstimator) or not all(hasattr(built, m) for m in ("fit", "predict")):
        raise UserCodeError(f"model.pipeline {ref!r} returned a {type(built).__module__}.{type(built).__name__}; "
                            "it must return a scikit-learn estimator or Pipeline (with fit and predict)")
    wrong = (task == "classification" and is_regressor(built)) or (task == "regression" and is_classifier(built))
    if wrong:
        raise UserCodeError(f"model.pipeline {ref!r} returned a {type(built).__name__} whose last step does not "
                            f"fit model.task {task!r}")


def identity(ref: str) -> dict[str, str]:
    """Tags naming the code that ran: ``code.pipeline``, ``code.file``, ``code.sha256`` and, where there is
    one, ``code.package`` (distribution==version), ``code.git_commit`` (+ ``code.git_dirty`` when the file
    differs from that commit). Call after ``import_function``."""
    module_name = ref.partition(":")[0]
    module = sys.modules[module_name]
    tags = {"code.pipeline": ref}
    file = Path(getattr(module, "__file__", "") or "")
    if file.is_file():
        tags["code.file"] = str(file)
        tags["code.sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
        tags.update(_git(file))
    package = _distribution(module_name.split(".")[0])
    if package:
        tags["code.package"] = package
    return tags


def _distribution(top: str) -> str | None:
    from importlib import metadata

    names = metadata.packages_distributions().get(top) or []
    for name in names:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def _git(file: Path) -> dict[str, str]:
    """The commit of the git work tree holding ``file`` and whether the file differs from it; {} when none."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(file.parent), *args], capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"code.git_commit": commit}
    status = git("status", "--porcelain", "--", file.name)
    if status:
        tags["code.git_dirty"] = "true"
    return tags
