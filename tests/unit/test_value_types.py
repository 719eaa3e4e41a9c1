"""The one typing rule of every source kind (core/value_types.py): text and native values alike."""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pytest
from mlops_pack.core.value_types import ValueFormat, coerce, hint, keep_last, stored, type_column

DMY = ValueFormat(date_formats=("%d/%m/%Y",))
UNITS = ValueFormat(affixes=("€", "m²", "years"))


@pytest.mark.parametrize(("raw", "kind", "value"), [
    ("€ 245,300", "number", 245300.0), ("72.5 m²", "number", 72.5), ("23 years", "integer", 23),
    ("\u22125", "number", -5.0), ("  ", "number", None), (" Lyon ", "string", "Lyon"),
    ("2026-11-01", "date", "2026-11-01"), ("2026-11-01T23:30:00+02:00", "date", "2026-11-01"),
    # native values (Parquet, SQL, JSON) under the same rules
    (3, "integer", 3), (3.0, "integer", 3), (np.int64(7), "number", 7.0), (decimal.Decimal("2.5"), "number", 2.5),
    (dt.date(2026, 12, 3), "date", "2026-12-03"), (pd.Timestamp("2026-12-03 23:59"), "date", "2026-12-03"),
    (float("nan"), "number", None), (12, "string", "12"),
])
def test_values_that_read(raw, kind, value):
    assert coerce(raw, kind, UNITS) == value


@pytest.mark.parametrize(("raw", "kind", "reason"), [
    ("1e3", "number", "'1e3' is not a number"), ("0x1F", "integer", "is not an integer"),
    ("1_000", "number", "is not a number"), ("0,5", "number", "is not a number"), ("10-20", "number", "not a number"),
    ("2.5", "integer", "'2.5' is not an integer"), ("9" * 400, "number", "not a finite number"),
    ("9223372036854775808", "integer", "64-bit"), (True, "number", "'True' is not a number"),
    (2.5, "integer", "is not an integer"), (float("inf"), "number", "not a finite number"),
    ("2026-02-30", "date", "not a calendar date"), (20261203, "date", "is not a date"),
    ("03/12/2026", "date", "'03/12/2026' is not an ISO date (YYYY-MM-DD) and source.date_formats is empty"),
    # a number is never picked out of other text (issue 25)
    ("price on request, ref #42", "number", "is not a number: the value must be one number"),
    ("call 0612345678", "integer", "is not an integer"), ("(12)", "number", "is not a number"),
    ("5-", "number", "is not a number"), ("72.5 m²", "number", "source.number_affixes (none)"),
])
def test_values_that_are_refused_say_why(raw, kind, reason):
    with pytest.raises(ValueError) as err:
        coerce(raw, kind)
    assert reason in str(err.value)


def test_a_non_iso_date_is_read_only_by_a_listed_layout_and_never_guessed():
    assert coerce("03/12/2026", "date", DMY) == "2026-12-03" and coerce("14/11/2026", "date", DMY) == "2026-11-14"
    with pytest.raises(ValueError, match=r"none of source.date_formats \['%d/%m/%Y'\] reads it"):
        coerce("12/31/2026", "date", DMY)


def test_decimal_comma_is_opt_in():
    comma = ValueFormat(decimal=",", thousands=".")
    assert coerce("1.234,5", "number", comma) == 1234.5
    with pytest.raises(ValueError):
        coerce("1.234,5", "number")


def test_text_and_typed_columns_give_the_same_stored_column():
    text, reasons = type_column(pd.Series(["1", "2.5", None, "x"]), "number")
    native, native_reasons = type_column(pd.Series([1.0, 2.5, None, np.inf]), "number")
    assert text.dtype == native.dtype == "float64" and text[:3].equals(native[:3])
    assert list(reasons) == [3] and list(native_reasons) == [3] and "not a finite number" in native_reasons[3]
    ints, bad = type_column(pd.Series([1.0, 2.5, None]), "integer")
    assert str(ints.dtype) == "Int64" and list(bad) == [1] and ints[0] == 1
    dates, _ = type_column(pd.Series(pd.to_datetime(["2026-12-03", None])), "date")
    text_dates, _ = type_column(pd.Series(["2026-12-03", ""]), "date")
    assert list(dates) == list(text_dates) == [dt.date(2026, 12, 3), None]
    assert list(stored(["2026-12-03", None], "date")) == [dt.date(2026, 12, 3), None]


def test_unhashable_json_values_are_refused_not_crashing():
    typed, reasons = type_column(pd.Series([[1, 2], "3"], dtype=object), "number")
    assert pd.isna(typed[0]) and typed[1] == 3.0 and "is not a number" in reasons[0]


def test_keep_last_one_rule_for_repeated_keys():
    plan = keep_last(["a", "b", "a", None, "b", " "], [1, 2, 3, 4, 2, 5])
    assert plan == {"kept": [2, 4], "keyless": [3, 5], "superseded": [0], "identical": [1]}
    assert keep_last([pd.NA, 1], [0, 0])["keyless"] == [0]


def test_hint_names_the_option_that_reads_the_samples():
    assert hint("date", ["03/12/2026", "14/11/2026"]) == "source.date_formats: ['%d/%m/%Y']"
    ambiguous = hint("date", ["03/12/2026", "04/12/2026"])
    assert ambiguous.startswith("source.date_formats: ['%d/%m/%Y']") and "'%m/%d/%Y'" in ambiguous
    assert hint("number", ["1.234,5"]) == "source.decimal_separator: ',' and source.thousands_separator: '.'"
    assert "fix the values at the source" in hint("number", ["1e3"])
    assert hint("number", ["€ 1,200", "€ 300"]) == "source.number_affixes: ['€'] (if that text is a currency or unit)"
    assert hint("number", ["1.200,5 EUR"]) == ("source.decimal_separator: ',' and source.thousands_separator: '.' "
                                               "and source.number_affixes: ['EUR'] (if that text is a currency or unit)")


def test_affixes_are_stripped_once_on_each_side_and_only_whole_numbers_read():
    assert coerce("€ 250,000", "number", UNITS) == 250000.0 and coerce("€250", "integer", UNITS) == 250
    assert coerce("23 YEARS", "integer", UNITS) == 23  # affixes compare case-insensitively
    for text in ("€ € 5", "5 m² m²", "m²", "€ 5 and 6", "about € 5"):
        with pytest.raises(ValueError):
            coerce(text, "number", UNITS)
