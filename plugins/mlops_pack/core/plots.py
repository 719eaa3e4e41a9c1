"""Figures a reviewer looks at before trusting a model: feature importance, residuals or confusion/ROC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlops_pack.core.spec import ModelSpec


def review_figures(pipeline: Any, holdout: pd.DataFrame, model: ModelSpec) -> dict[str, Any]:
    """``{artifact file name: matplotlib Figure}`` for the model's holdout."""
    import matplotlib

    matplotlib.use("Agg")  # workers have no display
    import matplotlib.pyplot as plt
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    x, y = holdout[model.features.all], holdout[model.target]
    figures = {}
    importance = permutation_importance(pipeline, x, y, n_repeats=5, random_state=0)
    order = importance.importances_mean.argsort()
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(order) + 1.5))
    ax.barh([x.columns[i] for i in order], importance.importances_mean[order],
            xerr=importance.importances_std[order])
    ax.set_title("Permutation importance on the holdout")
    figures["feature_importance.png"] = fig
    if model.task == "regression":
        predicted = pipeline.predict(x)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(predicted, y - predicted, s=6, alpha=0.5)
        ax.axhline(0, color="grey", linewidth=1)
        ax.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals on the holdout")
        figures["residuals.png"] = fig
    else:
        labels = sorted(set(y) | set(pipeline.predict(x)), key=str)
        fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.2 * len(labels) + 2.5))
        ConfusionMatrixDisplay.from_estimator(pipeline, x, y, labels=labels, ax=ax, xticks_rotation=45,
                                              colorbar=False)
        figures["confusion_matrix.png"] = fig
        if hasattr(pipeline, "predict_proba") and y.nunique() >= 2:
            # Binary: the ROC of the second class; multiclass: one curve per class against the rest.
            classes = list(pipeline.classes_)
            proba = pipeline.predict_proba(x)
            fig, ax = plt.subplots(figsize=(6, 5))
            shown = classes[1:] if len(classes) == 2 else classes
            for cls in shown:
                if (y == cls).any() and not (y == cls).all():
                    RocCurveDisplay.from_predictions(y == cls, proba[:, classes.index(cls)], ax=ax,
                                                     name=f"{cls} vs rest" if len(classes) > 2 else str(cls))
            ax.set_title("ROC on the holdout" + (" (one-vs-rest)" if len(classes) > 2 else ""))
            figures["roc.png"] = fig
    for fig in figures.values():
        fig.tight_layout()
    return figures


def search_figure(table: pd.DataFrame, metric: str) -> Any:
    """A scatter per search parameter of the trials' cross-validated ``metric`` (failed trials left out);
    None when no trial has a score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = table[table["status"] == "ok"] if len(table) else table
    params = [c for c in table.columns if c.startswith("param.")]
    if done.empty or not params:
        return None
    fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.5), squeeze=False)
    for ax, column in zip(axes[0], params, strict=True):
        values = done[column]
        numeric = values.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all()
        ax.scatter(values if numeric else values.astype(str), done["score"], s=18)
        ax.set(xlabel=column.removeprefix("param."), ylabel=f"cv {metric}")
    fig.suptitle(f"Search trials: cross-validated {metric} by parameter")
    fig.tight_layout()
    return fig
