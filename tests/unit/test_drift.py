"""core/drift.py: which columns are compared how, and the summary of an Evidently snapshot."""

from __future__ import annotations

from mlops_pack.core.drift import split_columns, summarise


def test_numeric_features_and_number_fields_are_numeric_the_rest_categorical():
    numeric, categorical = split_columns(["area", "rooms", "city", "note"], ["area"],
                                         {"rooms": "integer", "city": "string", "note": "date"})
    assert (numeric, categorical) == (["area", "rooms"], ["city", "note"])


def test_summary_reads_p_values_and_distances_the_right_way_round():
    report = {"metrics": [
        {"config": {"type": "evidently:metric_v2:DriftedColumnsCount"}, "value": {"count": 1, "share": 0.5}},
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "a", "method": "K-S p_value",
                    "threshold": 0.05}, "value": 0.01},
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "b", "method": "Wasserstein distance",
                    "threshold": 0.1}, "value": 0.05},
    ]}
    summary = summarise(report, 0.5)
    assert summary["drift"] is True and summary["drifted_columns"] == ["a"]


def test_sample_frame_is_bounded_and_deterministic():
    import pandas as pd
    from mlops_pack.core.drift import sample_frame

    frame = pd.DataFrame({"a": range(1000)})
    assert sample_frame(frame, 5000) is frame
    first, again = sample_frame(frame, 100), sample_frame(frame, 100)
    assert len(first) == 100 and first.equals(again) and first.index.is_monotonic_increasing


def test_the_strongest_drift_is_the_one_signalled():
    from mlops_pack.core.drift import strongest_drift

    quiet = {"drift": False, "share": 0.4, "partition": "a"}
    mild = {"drift": True, "share": 0.5, "partition": "b"}
    strong = {"drift": True, "share": 0.8, "partition": "c"}
    assert strongest_drift([quiet, strong, mild])["partition"] == "c"
    assert strongest_drift([quiet, {"drift": False, "share": 0.1}])["partition"] == "a"
