"""Profile-based drift (core/drift_profile.py) against Evidently 0.7.23's DataDriftPreset on small data:
the same method per column, the same verdicts, and the same scores (exact for every test but normed
Wasserstein, which is exact unless the two CDFs cross inside one of the profile's quantile bins)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlops_pack.core.drift_profile import build_profile, profile_drift


def random_frames(seed: int, n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Reference and current frames with numeric, few-valued and categorical columns, some shifted."""
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i in range(4):
        shift = rng.choice([0.0, 0.0, 0.05, 0.15, 0.5]) * rng.choice([-1, 1])
        ref[f"num{i}"] = rng.normal(10, 2, n_ref)
        cur[f"num{i}"] = rng.normal(10 + 2 * shift, 2 * (1 + abs(shift) * rng.random()), n_cur)
    ref["skew"], cur["skew"] = rng.lognormal(0, 1, n_ref), rng.lognormal(rng.choice([0, 0.2]), 1, n_cur)
    ref["ints"], cur["ints"] = rng.integers(0, 40, n_ref).astype(float), rng.integers(0, rng.choice([40, 44]), n_cur)
    for k in (2, 3, 5):
        p = rng.dirichlet(np.ones(k))
        q = p if rng.random() < 0.5 else rng.dirichlet(np.ones(k))
        ref[f"few{k}"] = rng.choice(np.arange(k, dtype=float), n_ref, p=p)
        cur[f"few{k}"] = rng.choice(np.arange(k, dtype=float), n_cur, p=q)
    for k in (2, 4, 12):
        p = rng.dirichlet(np.ones(k) * 3)
        q = p if rng.random() < 0.5 else rng.dirichlet(np.ones(k) * 3)
        ref[f"cat{k}"] = rng.choice([f"c{j}" for j in range(k)], n_ref, p=p)
        cur[f"cat{k}"] = rng.choice([f"c{j}" for j in range(k)], n_cur, p=q)
    reference, current = pd.DataFrame(ref), pd.DataFrame(cur)
    reference.loc[reference.index[:3], "num0"] = np.nan  # Evidently drops nulls before testing
    current.loc[current.index[-2:], "cat4"] = None
    numeric = [c for c in reference if not c.startswith("cat")]
    return reference, current, numeric, [c for c in reference if c.startswith("cat")]


def evidently_columns(reference, current, numeric, categorical) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    from mlops_pack.core.drift import summarise

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snap = Report([DataDriftPreset(columns=[*numeric, *categorical], drift_share=0.5)]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    return summarise(snap.dict(), 0.5)["columns"]


def profile_columns(reference, current, numeric, categorical) -> dict:
    profile = json.loads(json.dumps(build_profile(reference, numeric, categorical)))  # as stored
    batches = pa.Table.from_pandas(current, preserve_index=False).to_batches(max_chunksize=97)
    return profile_drift(profile, batches, 0.5)["columns"]


@pytest.mark.parametrize(("seed", "n_ref", "n_cur"), [(1, 300, 400), (2, 1000, 150), (3, 1001, 400),
                                                      (4, 5000, 3000), (5, 800, 5000), (6, 3000, 900)])
def test_same_methods_verdicts_and_scores_as_evidently(seed, n_ref, n_cur):
    reference, current, numeric, categorical = random_frames(seed, n_ref, n_cur)
    expected = evidently_columns(reference, current, numeric, categorical)
    got = profile_columns(reference, current, numeric, categorical)
    assert set(got) == set(expected)
    for column, ev in expected.items():
        mine = got[column]
        assert mine["method"] == ev["method"], column
        assert mine["drifted"] == ev["drifted"], (column, mine, ev)
        tol = 2e-3 if "Wasserstein" in ev["method"] else 1e-5
        assert mine["score"] == pytest.approx(ev["score"], abs=tol), (column, mine, ev)


def test_per_column_method_and_threshold_override():
    reference, current, numeric, categorical = random_frames(7, 3000, 3000)
    profile = build_profile(reference, numeric, categorical)
    table = pa.Table.from_pandas(current, preserve_index=False)
    columns = profile_drift(profile, [table], 0.5, methods={"cat12": "jensenshannon"},
                            thresholds={"num1": 100.0})["columns"]
    assert columns["num1"]["threshold"] == 100.0 and not columns["num1"]["drifted"]
    with pytest.raises(ValueError, match="ks from a profile"):
        profile_drift(profile, [table], 0.5, methods={"num1": "ks"})


def test_empty_current_column_is_named():
    reference, current, numeric, categorical = random_frames(8, 200, 50)
    current["num2"] = np.nan
    with pytest.raises(ValueError, match="num2"):
        profile_drift(build_profile(reference, numeric, categorical),
                      [pa.Table.from_pandas(current, preserve_index=False)], 0.5)


def test_bins_match_a_per_value_reading():
    from mlops_pack.core.drift_profile import _bin

    rng = np.random.default_rng(9)
    edges = np.array([-1.0, 0.0, 0.5, 2.0, 3.0])
    x = np.concatenate([rng.normal(1, 2, 500), edges, edges, [-5.0, 9.0]])  # values on edges: bin below
    count, gap = _bin(edges, x)
    idx = np.searchsorted(edges, x, side="left")
    expected_gap = np.abs(edges[np.minimum(idx, len(edges) - 1)] - x)
    assert count.tolist() == np.bincount(idx, minlength=len(edges) + 1).tolist()
    assert gap == pytest.approx(np.bincount(idx, weights=expected_gap, minlength=len(edges) + 1), abs=1e-9)


def test_parquet_files_read_by_column_give_the_verdicts_of_record_batches(tmp_path):
    import pyarrow.parquet as pq
    from mlops_pack.core.drift_profile import profile_drift_parquet

    reference, current, numeric, categorical = random_frames(11, 3000, 4000)
    current.loc[current.index[5:9], "num1"] = [np.inf, -np.inf, np.nan, np.nan]
    current["ints"] = current["ints"].astype("int64")
    profile = json.loads(json.dumps(build_profile(reference, numeric, categorical)))
    halves = [current.iloc[:1500], current.iloc[1500:]]
    for i, half in enumerate(halves):
        pq.write_table(pa.Table.from_pandas(half, preserve_index=False), tmp_path / f"{i}.parquet",
                       row_group_size=600)
    batches = pa.Table.from_pandas(current, preserve_index=False).to_batches(max_chunksize=700)
    expected = profile_drift(profile, batches, 0.5)
    with (tmp_path / "1.parquet").open("rb") as second:  # a path or an open file
        got = profile_drift_parquet(profile, [tmp_path / "0.parquet", second], 0.5)
    assert got == expected and got["current_rows"] == 4000
    pq.write_table(pa.Table.from_pandas(current.drop(columns=["skew"]), preserve_index=False), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="skew"):
        profile_drift_parquet(profile, [tmp_path / "x.parquet"], 0.5)
