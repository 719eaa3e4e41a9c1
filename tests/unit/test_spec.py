from __future__ import annotations

import pytest
from mlops_pack.core.spec import SpecError, estimator_path_problem, load_spec

from tests.support.env import REPO
from tests.support.specs import write_spec


def test_demo_spec_is_valid():
    spec = load_spec(REPO / "include" / "pipelines" / "listings.yaml")
    assert spec.name == "listings"
    assert spec.model.target == "price"
    assert spec.drift_columns == ["area_m2", "rooms", "age_years", "distance_km", "city", "condition"]


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ("owner: mlops", "owner: mlops\ncolour: blue", "colour", "unknown key"),
    ("  target: price", "  target: asking_price", "model.target", "'asking_price' is not a scraped column"),
    ("sklearn.ensemble.HistGradientBoostingRegressor", "sklearn.ensemble.GradientBoostedTreesRegressor",
     "model.estimator", "has no 'GradientBoostedTreesRegressor'"),
    ("sklearn.ensemble.HistGradientBoostingRegressor", "sklearnx.ensemble.Forest", "model.estimator",
     "not installed"),
    ("  holdout_fraction: 0.2", "  holdout_fraction: 1.5", "model.holdout_fraction", "less than 1"),
])
def test_spec_errors_name_file_and_field(tmp_path, old, new, field, message):
    path = write_spec(tmp_path, "http://127.0.0.1:9", **{old: new})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert str(path) in text
    assert f"  {field}" in text
    assert message in text


def test_spec_name_must_match_file(tmp_path):
    path = write_spec(tmp_path, "http://127.0.0.1:9")
    path.rename(tmp_path / "other.yaml")
    with pytest.raises(SpecError, match="must equal the file name 'other'"):
        load_spec(tmp_path / "other.yaml")


def test_estimator_check_does_not_import_sklearn():
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'plugins');"
            "from mlops_pack.core.spec import estimator_path_problem as p;"
            "assert p('sklearn.linear_model.Ridge') is None, p('sklearn.linear_model.Ridge');"
            "assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    assert estimator_path_problem("Ridge") is not None
