"""The pack's model metrics: which exist, what each needs, and how each is computed. No Airflow, no MLflow.

Every metric is defined once here and used by training (holdout metrics logged to MLflow) and by the
promotion gate (the challenger and champion judged on the same holdout, with bootstrap intervals).

Regression metrics take predicted values. Classification metrics take what they need: hard labels
(``accuracy``, ``balanced_accuracy``, ``f1``) or the class probabilities of ``predict_proba``
(``roc_auc``, ``log_loss``):

- ``accuracy``: share of rows whose predicted label is the true label.
- ``balanced_accuracy``: mean over classes of the recall of that class.
- ``f1``: macro-averaged F1, the unweighted mean of each class's F1 (a rare class counts as much as a
  frequent one); for two classes too, so it never depends on which label is called positive.
- ``roc_auc``: binary, the area under the ROC curve of the probability of the second class (in sorted
  label order); multiclass, one-vs-rest and macro-averaged (each class against the rest, unweighted).
- ``log_loss``: mean negative log-likelihood of the true labels under the predicted probabilities
  (lower is better); labels the model never saw count at the clipped minimum probability.
- ``rmse``, ``mae``, ``r2``: root mean squared error, mean absolute error, coefficient of determination.

A resample that cannot define a metric (one class only, for ``roc_auc``) yields NaN, and the gate's
interval ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    task: Literal["regression", "classification"]
    direction: Literal["higher", "lower"]
    needs: Literal["values", "labels", "proba"]
    definition: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("rmse", "regression", "lower", "values", "root mean squared error"),
    Metric("mae", "regression", "lower", "values", "mean absolute error"),
    Metric("r2", "regression", "higher", "values", "coefficient of determination"),
    Metric("accuracy", "classification", "higher", "labels", "share of rows labelled correctly"),
    Metric("balanced_accuracy", "classification", "higher", "labels", "mean per-class recall"),
    Metric("f1", "classification", "higher", "labels", "macro-averaged F1 (unweighted mean over classes)"),
    Metric("roc_auc", "classification", "higher", "proba",
           "area under the ROC curve from predict_proba; multiclass: one-vs-rest, macro-averaged"),
    Metric("log_loss", "classification", "lower", "proba",
           "mean negative log-likelihood of the true labels under predict_proba"),
)}


def metrics_for(task: str) -> list[str]:
    """Metric names that fit ``task``, sorted."""
    return sorted(name for name, m in METRICS.items() if m.task == task)


@dataclass(frozen=True)
class Predictions:
    """What a model predicted for a holdout: labels or values, and for a classifier its class probabilities
    (``proba`` columns in the order of ``classes``)."""

    labels: Any
    proba: Any = None
    classes: Any = None

    def take(self, rows: Any) -> Predictions:
        return Predictions(self.labels[rows], None if self.proba is None else self.proba[rows], self.classes)


def predictions_of(model: Any, x: Any, task: str, needs_proba: bool) -> Predictions:
    """``model``'s predictions on ``x``; with ``needs_proba`` the class probabilities too (a classifier
    without predict_proba is an error naming the estimator)."""
    import numpy as np

    labels = np.asarray(model.predict(x))
    if task != "classification" or not needs_proba:
        return Predictions(labels)
    if not hasattr(model, "predict_proba"):
        raise ValueError(f"{type(_final(model)).__name__} has no predict_proba: roc_auc and log_loss need class "
                         "probabilities; gate on accuracy, balanced_accuracy or f1, or use a probabilistic estimator")
    return Predictions(labels, np.asarray(model.predict_proba(x), dtype=float), np.asarray(_final(model).classes_))


def _final(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def compute(metric: str, y: np.ndarray, pred: Predictions | np.ndarray) -> float:
    """``metric`` of ``pred`` against the true ``y`` (NaN where the rows cannot define it)."""
    import numpy as np

    return float(samples(metric, y, pred, np.arange(len(y))[None, :])[0])


def samples(metric: str, y: np.ndarray, pred: Predictions | np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``metric`` on each row of the index matrix ``idx`` (resamples x rows): one value per resample."""
    import numpy as np

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
    if not isinstance(pred, Predictions):
        pred = Predictions(np.asarray(pred))
    y = np.asarray(y)
    yt, yp = y[idx], pred.labels[idx]
    if metric == "rmse":
        return np.sqrt(np.mean((yt - yp) ** 2, axis=1))
    if metric == "mae":
        return np.mean(np.abs(yt - yp), axis=1)
    if metric == "r2":
        total = np.sum((yt - yt.mean(axis=1, keepdims=True)) ** 2, axis=1)
        return 1 - np.sum((yt - yp) ** 2, axis=1) / np.where(total == 0, np.nan, total)
    if metric == "accuracy":
        return np.mean(yt == yp, axis=1)
    if METRICS[metric].needs == "labels":
        return np.array([_label_metric(metric, a, b) for a, b in zip(yt, yp, strict=True)])
    if pred.proba is None:
        raise ValueError(f"metric {metric!r} needs class probabilities (predict_proba), got labels only")
    return np.array([_proba_metric(metric, y[rows], pred.proba[rows], pred.classes) for rows in idx])


def _label_metric(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn import metrics as m

    if metric == "f1":
        return float(m.f1_score(y_true, y_pred, average="macro", zero_division=0))
    return float(m.balanced_accuracy_score(y_true, y_pred))


def _proba_metric(metric: str, y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    import numpy as np
    from sklearn import metrics as m

    if metric == "log_loss":
        return float(m.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=list(classes)))
    present = np.unique(y_true)
    if len(present) < 2 or not set(present) <= set(classes):
        return float("nan")  # one class only (or a label the model never saw): AUC is undefined
    if len(classes) == 2:
        return float(m.roc_auc_score(y_true == classes[1], proba[:, 1]))
    if len(present) < len(classes):  # one-vs-rest over the classes present in this sample
        keep = np.isin(classes, present)
        sub = proba[:, keep]
        sub = sub / np.where(sub.sum(axis=1, keepdims=True) == 0, 1, sub.sum(axis=1, keepdims=True))
        if len(present) == 2:
            return float(m.roc_auc_score(y_true == classes[keep][1], sub[:, 1]))
        return float(m.roc_auc_score(y_true, sub, multi_class="ovr", average="macro", labels=list(classes[keep])))
    return float(m.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=list(classes)))


def per_class_report(y: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision, recall and support of each class, keyed ``precision.<class>`` etc. (MLflow-safe names)."""
    import re

    import numpy as np
    from sklearn import metrics as m

    classes = np.unique(np.concatenate([np.asarray(y), np.asarray(labels)]))
    precision, recall, _, support = m.precision_recall_fscore_support(y, labels, labels=classes, zero_division=0)
    out: dict[str, float] = {}
    for cls, p, r, s in zip(classes, precision, recall, support, strict=True):
        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(cls))[:60]
        out[f"precision.{safe}"], out[f"recall.{safe}"], out[f"support.{safe}"] = float(p), float(r), float(s)
    return out
