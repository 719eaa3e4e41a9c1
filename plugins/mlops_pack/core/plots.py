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
        figures["confusion_matrix.png"] = ConfusionMatrixDisplay.from_estimator(pipeline, x, y).figure_
        if y.nunique() == 2 and hasattr(pipeline, "predict_proba"):
            figures["roc.png"] = RocCurveDisplay.from_estimator(pipeline, x, y).figure_
    for fig in figures.values():
        fig.tight_layout()
    return figures
