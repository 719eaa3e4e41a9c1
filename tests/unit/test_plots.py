"""core/plots.py: the review figures logged with a model, from a real fitted scikit-learn pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.plots import review_figures
from mlops_pack.core.spec import ModelSpec


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"signal": rng.normal(size=rows), "noise": rng.normal(size=rows)})
    df["y"] = 3 * df["signal"] + rng.normal(scale=0.1, size=rows)
    return df


def spec(task: str, estimator: str) -> ModelSpec:
    return ModelSpec(task=task, target="label" if task == "classification" else "y", estimator=estimator,
                     features={"numeric": ["noise", "signal"]})


def test_regression_gets_importance_and_residuals():
    from sklearn.linear_model import LinearRegression

    holdout = frame()
    model = spec("regression", "sklearn.linear_model.LinearRegression")
    pipeline = LinearRegression().fit(holdout[["noise", "signal"]], holdout["y"])
    figures = review_figures(pipeline, holdout, model)
    assert set(figures) == {"feature_importance.png", "residuals.png"}
    bars = figures["feature_importance.png"].axes[0]
    assert [t.get_text() for t in bars.get_yticklabels()] == ["noise", "signal"]  # most important last (top)
    residuals = figures["residuals.png"].axes[0]
    assert len(residuals.collections[0].get_offsets()) == len(holdout)
    assert residuals.get_ylabel() == "residual (actual - predicted)"


def test_binary_classification_gets_confusion_matrix_and_roc():
    from sklearn.linear_model import LogisticRegression

    holdout = frame().assign(label=lambda d: np.where(d["signal"] > 0, "up", "down"))
    model = spec("classification", "sklearn.linear_model.LogisticRegression")
    pipeline = LogisticRegression().fit(holdout[["noise", "signal"]], holdout["label"])
    figures = review_figures(pipeline, holdout, model)
    assert set(figures) == {"feature_importance.png", "confusion_matrix.png", "roc.png"}
    assert "AUC" in figures["roc.png"].axes[0].get_legend().get_texts()[0].get_text()
    matrix = figures["confusion_matrix.png"].axes[0]
    assert [t.get_text() for t in matrix.get_xticklabels()] == ["down", "up"]


def test_multiclass_or_probability_free_models_get_no_roc():
    from sklearn.svm import LinearSVC

    holdout = frame().assign(label=lambda d: pd.cut(d["signal"], [-np.inf, -0.5, 0.5, np.inf],
                                                    labels=["low", "mid", "high"]).astype(str))
    multiclass = spec("classification", "sklearn.svm.LinearSVC")
    figures = review_figures(LinearSVC().fit(holdout[["noise", "signal"]], holdout["label"]), holdout, multiclass)
    assert set(figures) == {"feature_importance.png", "confusion_matrix.png"}

    binary = holdout.assign(label=lambda d: np.where(d["signal"] > 0, "up", "down"))
    svc = LinearSVC().fit(binary[["noise", "signal"]], binary["label"])  # no predict_proba
    assert "roc.png" not in review_figures(svc, binary, multiclass)


def test_figures_render_to_png_without_a_display(tmp_path):
    from sklearn.linear_model import LinearRegression

    holdout = frame(60)
    pipeline = LinearRegression().fit(holdout[["noise", "signal"]], holdout["y"])
    model = spec("regression", "sklearn.linear_model.LinearRegression")
    for name, figure in review_figures(pipeline, holdout, model).items():
        figure.savefig(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
