"""Validation cost: ``core.validate.validate_frame`` (Great Expectations) vs the same checks in vectorised pandas.

    python bench/validate.py [--rows 1000000] [--rounds 3] [--profile]

One frame of ``--rows`` x 20 columns (14 float, 3 integer, 2 categorical strings, 1 string key) with
a few planted faults; 20 expectations over it (not-null, between, in-set, unique, row count, mean,
max, column exists). Both sides run in this process, interleaved round by round, after one warm-up
on a small frame each (imports and GX's first-use set-up are not the cost measured; they are printed
separately). Medians of ``--rounds``. Both must report the same failures (expectation, column,
unexpected percent); the script stops if they differ. Design bar: GX <= 1.5x pandas.
``--profile`` prints the top of cProfile's cumulative listing for one GX run instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

FLOATS = [f"f{i}" for i in range(14)]
INTS = ["i0", "i1", "i2"]
CATEGORIES = {"city": ["Berlin", "Hamburg", "Munich", "Cologne"], "condition": ["new", "good", "fair", "poor"]}


def frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    data = {"id": [f"id{i:09d}" for i in range(rows)]}
    data |= {c: rng.normal(50, 10, rows) for c in FLOATS}
    data |= {c: rng.integers(0, 100, rows) for c in INTS}
    data |= {c: rng.choice(values, rows) for c, values in CATEGORIES.items()}
    df = pd.DataFrame(data)
    # planted faults: nulls, out-of-range values, an unknown category, duplicated keys
    df.loc[rng.choice(rows, max(1, rows // 1000), replace=False), "f0"] = np.nan
    df.loc[rng.choice(rows, max(1, rows // 500), replace=False), "f1"] = 500.0
    df.loc[rng.choice(rows, max(1, rows // 2000), replace=False), "condition"] = "ruined"
    df.loc[: max(1, rows // 10_000), "id"] = "dup"
    return df


def expectations() -> list[dict]:
    exp = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": c}} for c in ["id", *FLOATS[:5]]]
    exp += [{"type": "expect_column_values_to_be_between", "kwargs": {"column": c, "min_value": -50, "max_value": 150}}
            for c in FLOATS[:6]]
    exp += [{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": c, "value_set": v}}
            for c, v in CATEGORIES.items()]
    exp += [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "i0", "min_value": 0, "max_value": 99}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "f7", "min_value": 45, "max_value": 55}},
            {"type": "expect_column_max_to_be_between", "kwargs": {"column": "i1", "min_value": 0, "max_value": 99}},
            {"type": "expect_column_to_exist", "kwargs": {"column": "i2"}}]
    assert len(exp) == 20
    return exp


CHECKS = {  # expectation -> unexpected count (aggregate expectations: 1 when it fails)
    "expect_column_values_to_not_be_null": lambda df, s, kw: int(s.isna().sum()),
    "expect_column_values_to_be_between": lambda df, s, kw: int(
        ((s.dropna() < kw["min_value"]) | (s.dropna() > kw["max_value"])).sum()),
    "expect_column_values_to_be_in_set": lambda df, s, kw: int((~s.dropna().isin(kw["value_set"])).sum()),
    "expect_column_values_to_be_unique": lambda df, s, kw: int(s.dropna().duplicated(keep=False).sum()),
    "expect_table_row_count_to_be_between": lambda df, s, kw: int(len(df) < kw["min_value"]),
    "expect_column_mean_to_be_between": lambda df, s, kw: int(not kw["min_value"] <= s.mean() <= kw["max_value"]),
    "expect_column_max_to_be_between": lambda df, s, kw: int(not kw["min_value"] <= s.max() <= kw["max_value"]),
    "expect_column_to_exist": lambda df, s, kw: int(s is None),
}


def pandas_checks(df, exps: list[dict]) -> list[tuple]:
    """The same 20 checks, vectorised pandas; failures as (expectation, column, unexpected percent)."""
    failures = []
    for e in exps:
        column = e["kwargs"].get("column")
        bad = CHECKS[e["type"]](df, df[column] if column in df else None, e["kwargs"])
        if bad:  # as core.validate reports it: the unexpected share in percent, 3 decimals
            failures.append((e["type"], column, round(100 * bad / len(df), 3) if kind_is_map(e) else None))
    return sorted(failures, key=str)


def kind_is_map(e: dict) -> bool:
    return e["type"].startswith("expect_column_values_")


def gx_failures(result: dict) -> list[tuple]:
    return sorted(((f["expectation"], f["column"], f.get("unexpected_percent")) for f in result["failures"]), key=str)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from mlops_pack.core.validate import validate_frame

    exps = expectations()
    start = time.perf_counter()
    small = frame(2_000)
    validate_frame(small, exps, "bench")
    warm_gx = time.perf_counter() - start
    start = time.perf_counter()
    pandas_checks(small, exps)
    warm_pd = time.perf_counter() - start
    df = frame(args.rows)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        validate_frame(df, exps, "bench")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    times: dict[str, list[float]] = {"gx": [], "pandas": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        result = validate_frame(df, exps, "bench")
        times["gx"].append(time.perf_counter() - start)
        start = time.perf_counter()
        expected = pandas_checks(df, exps)
        times["pandas"].append(time.perf_counter() - start)
        found = gx_failures(result)
        if found != expected:
            sys.exit(f"different failures:\n  GX:     {found}\n  pandas: {expected}")
    gx, pd_ = statistics.median(times["gx"]), statistics.median(times["pandas"])
    print(f"first use on 2,000 rows (imports, GX set-up): GX {warm_gx:.2f} s, pandas {warm_pd:.2f} s")
    print(f"{args.rows:,} x {df.shape[1]}, {len(exps)} expectations, {len(expected)} failing "
          f"({', '.join(k.removeprefix('expect_') + ' ' + str(c) for k, c, _ in expected)})")
    print(f"  GX validate_frame {gx:.2f} s (runs {', '.join(f'{t:.2f}' for t in times['gx'])}), "
          f"pandas {pd_:.2f} s (runs {', '.join(f'{t:.2f}' for t in times['pandas'])})")
    print(f"  GX / pandas time: {gx / pd_:.2f}x (bar <= 1.5), same failures: yes")


if __name__ == "__main__":
    main()
