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


STRING_CHECKS = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "city"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "city"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "city", "value_set": ["Berlin", "Bonn"]}},
    {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "city", "value_set": ["Paris"]}},
]


def test_string_columns_checked_as_arrow_strings_report_what_object_columns_would():
    from mlops_pack.core.validate import _arrow_strings

    frame = pd.DataFrame({"city": ["Berlin", None, "Bonn", float("nan"), "Berlin", "Paris"]})
    converted = _arrow_strings(frame, STRING_CHECKS)
    assert str(converted["city"].dtype) == "string" and converted["city"].isna().sum() == 2
    result = validate_frame(frame, STRING_CHECKS, "strings")
    by_type = {f["expectation"]: (f["unexpected_percent"], f["sample"]) for f in result["failures"]}
    assert by_type == {"expect_column_values_to_not_be_null": (33.333, [None, None]),  # not '<NA>'
                       "expect_column_values_to_be_unique": (50.0, ["Berlin", "Berlin"]),
                       "expect_column_values_to_be_in_set": (25.0, ["Paris"]),
                       "expect_column_values_to_not_be_in_set": (25.0, ["Paris"])}


@pytest.mark.parametrize(("values", "expectation"), [
    (["a", "b"], {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "city", "type_": "object"}}),
    (["a", 1], STRING_CHECKS[0]),  # not only str
    (["a", "b"], {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "city", "value_set": ["a", "b", 1]}}),
])
def test_columns_stay_python_objects_where_arrow_strings_could_change_the_answer(values, expectation):
    from mlops_pack.core.validate import _arrow_strings

    frame = pd.DataFrame({"city": values})
    assert _arrow_strings(frame, [expectation]) is frame
    assert validate_frame(frame, [expectation], "objects")["success"] is True


def test_mean_of_decimal_objects_and_of_floats_as_gx_computes_them(capfd):
    from decimal import Decimal

    mean = {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 2, "max_value": 2.5}}
    assert validate_frame(pd.DataFrame({"x": [Decimal("1.5"), Decimal("3.0")]}), [mean], "dec")["success"] is True
    failed = validate_frame(pd.DataFrame({"x": [1.0, 2.0]}), [mean], "floats")
    assert failed["failures"][0]["observed"] == 1.5
    assert "Calculating Metrics" not in capfd.readouterr().err  # GX's progress bars are off
    import numpy as np
    from great_expectations import util

    # GX's own per-value scan is kept for object arrays, skipped for typed ones (which hold no Decimal)
    assert util.does_ndarray_contain_decimal_dtype(np.array([1.0, Decimal("2")], dtype=object)) is True
    assert util.does_ndarray_contain_decimal_dtype(np.array(["a", 1.0], dtype=object)) is False
    assert util.does_ndarray_contain_decimal_dtype(np.arange(3.0)) is False
