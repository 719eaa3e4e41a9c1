"""Model code a data scientist owns: ``model.pipeline: tests.user_code.price_models:price_pipeline``."""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingRegressor


def area_per_room(frame):
    """A feature of the user's own: floor area per room."""
    out = frame.copy()
    out["area_per_room"] = out["area_m2"] / out["rooms"].clip(lower=1)
    return out


def price_pipeline(numeric, categorical, max_iter=100, learning_rate=0.1):
    """Own features, then gradient boosting; the spec's columns decide what is encoded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    prepare = ColumnTransformer([
        ("numeric", "passthrough", [*numeric, "area_per_room"]),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical)),
    ])
    return Pipeline([("features", FunctionTransformer(area_per_room)), ("prepare", prepare),
                     ("model", HistGradientBoostingRegressor(max_iter=max_iter, learning_rate=learning_rate,
                                                            random_state=0))])


def not_a_model(numeric, categorical):
    """Returns the columns, not an estimator: `mlops-pack check` must refuse it."""
    return [*numeric, *categorical]


REFUSED_MAX_ITER = 7  # a search trial with this max_iter fails


def picky_pipeline(numeric, categorical, max_iter=50):
    """price_pipeline, but its regressor's fit raises for max_iter=REFUSED_MAX_ITER: a failing search trial."""
    return price_pipeline(numeric, categorical).set_params(model=PickyRegressor(max_iter=max_iter, random_state=0))


class PickyRegressor(HistGradientBoostingRegressor):
    def fit(self, X, y, sample_weight=None):  # noqa: N803 - scikit-learn's names
        if self.max_iter == REFUSED_MAX_ITER:
            raise ValueError(f"max_iter={REFUSED_MAX_ITER} is refused by this test model")
        return super().fit(X, y, sample_weight)
