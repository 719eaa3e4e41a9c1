"""What reproduce calls a difference: partitions, libraries, code identity, predictions bit for bit."""

from __future__ import annotations

import numpy as np
from mlops_pack.core.reproduce import (
    code_differences,
    library_differences,
    library_versions,
    partition_differences,
    prediction_difference,
    render_text,
    reproduced,
    training_inputs,
)

RECORDED = [{"key": "2026-11-01", "version": "aaa"}, {"key": "2026-11-02", "version": "bbb"},
            {"key": "2026-11-03", "version": "ccc"}]


def test_each_partition_that_no_longer_holds_the_rows_trained_on_is_named_with_why():
    found = {"2026-11-01": {"manifest": "aaa", "rows_version": "aaa", "file": "f1"},
             "2026-11-02": {"manifest": "bbb", "rows_version": "zzz", "file": "/data/validated/2026-11-02/data-bbb.parquet"},
             "2026-11-03": {"manifest": "ddd", "rows_version": "ddd", "file": "f3"}}
    differences = partition_differences(RECORDED, found)
    assert [d["partition"] for d in differences] == ["2026-11-02", "2026-11-03"]
    assert "data-bbb.parquet hash to zzz" in differences[0]["problem"] and "changed in place" in differences[0]["problem"]
    assert "was replaced" in differences[1]["problem"]
    gone = partition_differences(RECORDED[:1], {"2026-11-01": {"manifest": None, "error": "no manifest.json"}})
    assert gone[0]["problem"] == "partition 2026-11-01 is gone: no manifest.json"
    assert partition_differences(RECORDED[:1], {}) [0]["found"] is None
    same = {p["key"]: {"manifest": p["version"], "rows_version": p["version"]} for p in RECORDED}
    assert partition_differences(RECORDED, same) == []


def test_library_and_code_differences_ignore_what_cannot_change_a_prediction():
    now = library_versions()
    assert now["python"] and now["scikit-learn"] != "missing"
    assert library_differences(now, now) == []
    older = {**now, "scikit-learn": "0.1"}
    assert library_differences(older, now) == [{"library": "scikit-learn", "recorded": "0.1",
                                                "now": now["scikit-learn"]}]
    code = {"code.pipeline": "m:f", "code.sha256": "1", "code.file": "/a/m.py"}
    assert code_differences(code, {**code, "code.file": "/elsewhere/m.py"}) == []  # moved, not changed
    assert code_differences(code, {**code, "code.sha256": "2"}) == [{"tag": "code.sha256", "recorded": "1", "now": "2"}]


def test_predictions_are_compared_bit_for_bit():
    a = np.array([1.0, 2.0, 3.0])
    assert prediction_difference(a, a.copy()) == {"identical": True, "rows": 3, "differing_rows": 0,
                                                  "max_abs_diff": 0.0}
    near = a.copy()
    near[1] = np.nextafter(2.0, 3.0)  # one ulp: equal to any tolerance, not bit for bit
    diff = prediction_difference(a, near)
    assert not diff["identical"] and diff["differing_rows"] == 1 and 0 < diff["max_abs_diff"] < 1e-12
    assert not prediction_difference(np.array([0.0]), np.array([-0.0]))["identical"]
    labels = np.array(["a", "b"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert prediction_difference((labels, proba), (labels.copy(), proba.copy()))["identical"]
    other = proba.copy()
    other[0, 0] = 0.8
    assert prediction_difference((labels, proba), (labels, other))["differing_rows"] == 1
    assert "different shape" in prediction_difference(a, a[:2])["problem"]
    assert prediction_difference(np.array([]), np.array([]))["identical"]


def test_reproduced_needs_unchanged_data_and_identical_predictions_and_the_text_says_what_differs():
    report = {"pipeline": "p", "version": "3", "data": [], "problems": [], "libraries": [], "code": [],
              "partitions_checked": ["2026-11-01"], "predictions": {"identical": True, "rows": 80,
                                                                     "differing_rows": 0, "max_abs_diff": 0.0}}
    assert reproduced(report)
    assert render_text(report).splitlines()[:2] == ["p v3: REPRODUCED",
                                                    "  holdout predictions: identical, bit for bit, on 80 rows"]
    changed = {**report, "data": [{"problem": "partition 2026-11-01 was replaced"}],
               "libraries": [{"library": "numpy", "recorded": "1", "now": "2"}],
               "predictions": {"identical": False, "rows": 80, "differing_rows": 7, "max_abs_diff": 0.5}}
    assert not reproduced(changed)
    text = render_text(changed)
    assert text.startswith("p v3: NOT REPRODUCED")
    for line in ("7 of 80 rows differ", "data differs: partition 2026-11-01 was replaced",
                 "library differs: numpy 1 when trained, 2 now"):
        assert line in text
    assert not reproduced({**report, "predictions": None})  # never compared: not reproduced


def test_training_inputs_record_the_window_the_model_section_and_the_seeds():
    from mlops_pack.core.spec import PipelineSpec, load_spec

    from tests.support.env import REPO

    raw = load_spec(REPO / "include" / "pipelines" / "listings.yaml").model_dump()
    raw["model"]["params"] = {"alpha": 2.0, "random_state": 7}
    raw["model"]["estimator"] = "sklearn.linear_model.Ridge"
    spec = PipelineSpec.model_validate({**raw, "spec_path": "/specs/listings.yaml"})
    inputs = training_inputs(spec, [{"partition": "2026-11-01", "version": "aaa", "rows": 10, "folder": "/v/1"}],
                             train_version="t", holdout_version="h", code=None)
    assert inputs["partitions"] == [{"key": "2026-11-01", "version": "aaa", "rows": 10, "folder": "/v/1"}]
    assert inputs["model"]["params"] == {"alpha": 2.0, "random_state": 7}
    assert inputs["seeds"] == {"split": None, "estimator": 7, "search": None}
    assert (inputs["record_key"], inputs["train_version"], inputs["holdout_version"]) == ("listing_id", "t", "h")
    assert inputs["spec_path"] == "/specs/listings.yaml"
    assert inputs["libraries"] == library_versions()
