"""The drift report drawn from the profile (core/drift_html.py): it shows the verdicts the monitor made,
each column's distribution over every row of both sides, says that nothing was sampled, and lets no
scraped value become markup."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlops_pack.core.drift_html import categorical_shares, numeric_histogram, render_report, report_json
from mlops_pack.core.drift_profile import build_profile, current_stats_parquet, drift_summary, profile_drift

HOSTILE = '</script><img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    rng = np.random.default_rng(7)
    n_ref, n_cur = 5_000, 3_000
    reference = pd.DataFrame({"area": rng.normal(80, 10, n_ref), "rooms": rng.integers(1, 6, n_ref).astype(float),
                              "city": rng.choice(["north", "south", HOSTILE], n_ref, p=[0.5, 0.4, 0.1])})
    current = pd.DataFrame({"area": rng.normal(95, 10, n_cur),  # shifted: some values above every reference one
                            "rooms": rng.integers(1, 6, n_cur).astype(float),
                            "city": rng.choice(["north", "south", HOSTILE], n_cur, p=[0.5, 0.4, 0.1])})
    profile = json.loads(json.dumps(build_profile(reference, ["area", "rooms"], ["city"])))  # as stored
    path = tmp_path_factory.mktemp("drift") / "current.parquet"
    pq.write_table(pa.Table.from_pandas(current, preserve_index=False), path, row_group_size=1_000)
    stats = current_stats_parquet(profile, [path])
    summary = drift_summary(profile, stats, 0.3)
    return reference, current, profile, stats, summary


def test_the_parquet_stats_give_the_same_verdicts_as_the_streamed_batches(case):
    reference, current, profile, stats, summary = case
    streamed = profile_drift(profile, pa.Table.from_pandas(current, preserve_index=False).to_batches(500), 0.3)
    assert summary == streamed
    assert summary["drifted_columns"] == ["area"] and stats.rows == len(current)


def test_numeric_bars_count_every_row_of_each_side_in_the_same_ranges(case):
    reference, current, profile, stats, _ = case
    labels, ref, cur = numeric_histogram(profile["columns"]["area"], stats.state["area"])
    assert sum(ref) == pytest.approx(1) and sum(cur) == pytest.approx(1)
    assert labels[-1].startswith("> ")  # current values above the reference's maximum get their own bar
    # Each bar's share equals the share of raw values in its range, counted independently here.
    for i, label in enumerate(labels[:-1]):
        lo, hi = (float(x) for x in label.split(" .. "))
        inside = (reference["area"] <= hi) & ((reference["area"] > lo) if i else True)
        # labels are rounded to 4 significant digits: a value within rounding of an edge may fall either side
        assert ref[i] == pytest.approx(inside.mean(), abs=10 / len(reference)), label
    above = (current["area"] > reference["area"].max()).mean()
    assert cur[-1] == pytest.approx(above) and above > 0
    # the shift shows: the current side's weight sits higher
    centre = np.arange(len(cur))
    assert (centre * np.array(cur)).sum() > (centre * np.array(ref)).sum() + 2


def test_categorical_bars_are_each_sides_shares_and_fold_the_tail_into_other():
    ref = {"type": "categorical", "n": 100, "counts": [[f"c{i}", 10 - i] for i in range(10)] + [["x", 45]]}
    st = {"counts": {"c0": 5, "new": 15}}
    labels, r, c = categorical_shares(ref, st, top=3)
    assert labels[:3] == ["new", "x", "c0"] and labels[3] == "other (9 categories)"
    assert r[:3] == [0, 0.45, 0.1] and c[:3] == [0.75, 0, 0.25]
    assert sum(r) == pytest.approx(1) and sum(c) == pytest.approx(1)


def test_the_page_shows_the_verdicts_says_nothing_was_sampled_and_escapes_values(case):
    _, current, profile, stats, summary = case
    html = render_report("Data drift: p 2026-11-02__v3", profile, stats, summary, "Partitions X against v3's training set.")
    assert "Dataset Drift is detected" in html  # 1 of 3 columns >= 0.3
    for name, v in summary["columns"].items():
        assert f"<td>{v['method']}</td><td>{v['score']}</td>" in html, name
    assert f"all {len(current):,} rows" in html and f"all {profile['rows']:,} rows of the training set" in html
    assert "No sample" in html and "Partitions X against v3&#x27;s training set." in html
    assert "<script" not in html and "<img" not in html and "onerror=&quot;" in html
    assert html.count("<svg") == 3


def test_report_json_holds_the_summary_and_bars(case):
    _, _, profile, stats, summary = case
    doc = json.loads(json.dumps(report_json(profile, stats, summary, "x")))
    assert doc["sampled"] is False and doc["current_rows"] == stats.rows
    assert doc["drifted_columns"] == summary["drifted_columns"]
    assert {c: v["drifted"] for c, v in doc["columns"].items()} == {c: v["drifted"] for c, v in summary["columns"].items()}
    assert sum(doc["columns"]["rooms"]["bars"]["current"]) == pytest.approx(1)
