"""core/validate.py: expectations from the spec and a suite file, run by real Great Expectations."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlops_pack.core.validate import load_expectations, required_columns, validate_frame

NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"}}
BETWEEN = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "price", "min_value": 1,
                                                                      "max_value": 100}}
UNIQUE = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}


def test_inline_and_suite_file_expectations_are_combined(tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}, "meta": {"x": 1}},
        {"type": "expect_table_row_count_to_be_between"}]}))
    loaded = load_expectations([NOT_NULL], suite)
    assert loaded == [NOT_NULL, UNIQUE, {"type": "expect_table_row_count_to_be_between", "kwargs": {}}]
    assert load_expectations([NOT_NULL], None) == [NOT_NULL]


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read expectation suite"),
    ("{not json", "cannot read expectation suite"),
    ('{"name": "s"}', "has no 'expectations' list"),
    ("[1, 2]", "has no 'expectations' list"),
])
def test_an_unreadable_or_malformed_suite_file_is_a_clear_error(tmp_path, content, message):
    suite = tmp_path / "suite.json"
    if content is not None:
        suite.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_expectations([], suite)


def test_required_columns_covers_every_column_kwarg():
    expectations = [NOT_NULL, {"type": "expect_column_pair_values_a_to_be_greater_than_b",
                               "kwargs": {"column_A": "high", "column_B": "low"}},
                    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}},
                    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]
    assert required_columns(expectations) == {"price", "high", "low", "a", "b"}


def test_missing_columns_fail_without_running_gx():
    result = validate_frame(pd.DataFrame({"id": [1]}), [NOT_NULL, BETWEEN, UNIQUE], "listings")
    assert result["success"] is False and result["evaluated"] == 3
    assert result["failures"] == [{"expectation": "columns_present", "column": "price", "observed": "missing"}]


def test_good_data_passes_and_bad_data_fails_with_column_share_and_sample():
    good = pd.DataFrame({"id": [1, 2, 3, 4], "price": [10.0, 20.0, 30.0, 40.0]})
    passed = validate_frame(good, [NOT_NULL, BETWEEN, UNIQUE], "good")
    assert passed == {"success": True, "evaluated": 3, "failed": 0, "failures": [], "docs": None, "suite": "good"}

    bad = pd.DataFrame({"id": [1, 2, 2, 4], "price": [10.0, 500.0, 30.0, 40.0]})
    failed = validate_frame(bad, [NOT_NULL, BETWEEN, UNIQUE], "bad")
    assert failed["success"] is False and failed["evaluated"] == 3 and failed["failed"] == 2
    by_type = {f["expectation"]: f for f in failed["failures"]}
    assert by_type["expect_column_values_to_be_between"]["column"] == "price"
    assert by_type["expect_column_values_to_be_between"]["unexpected_percent"] == 25.0
    assert by_type["expect_column_values_to_be_between"]["sample"] == [500.0]
    assert by_type["expect_column_values_to_be_unique"]["sample"] == [2, 2]
    json.dumps(failed, allow_nan=False)  # XCom-safe: strict JSON


def test_an_infinite_observed_value_becomes_null_so_the_result_stays_strict_json():
    frame = pd.DataFrame({"price": [float("inf"), 1.0]})
    result = validate_frame(frame, [{"type": "expect_column_max_to_be_between",
                                     "kwargs": {"column": "price", "min_value": 1, "max_value": 2}}], "inf")
    assert result["success"] is False and result["failures"][0]["observed"] is None
    json.dumps(result, allow_nan=False)


def test_docs_dir_builds_a_data_docs_page(tmp_path):
    result = validate_frame(pd.DataFrame({"price": [5.0]}), [NOT_NULL], "docs", docs_dir=tmp_path)
    assert result["success"] is True
    assert result["docs"] and result["docs"].startswith(str(tmp_path)) and result["docs"].endswith("index.html")
    assert "<html" in (tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
