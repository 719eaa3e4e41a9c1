"""Drift benchmark: profile-based verdicts vs Evidently's DataDriftPreset on the full data.

    .venv/bin/python bench/drift.py            # 1M x 50 (10 shifted columns), 300k x 20, randomised cases
    .venv/bin/python bench/drift.py --quick    # 100k x 20 and 30k x 10, fewer randomised cases

For each size, a reference (the training set) and a current partition (predictions) are written as
Parquet; each contender runs in its own fresh process, so peak RSS (VmHWM) is its own:

- baseline: read both files into pandas, Evidently 0.7.23 ``DataDriftPreset`` on all rows (what the
  monitor did before), verdicts read with ``core.drift.summarise``;
- profile: read the reference profile (built at training time; its build time is printed apart),
  stream the current file column by column through ``core.drift_profile.profile_drift_parquet``
  (what ``EvidentlyDriftOperator`` runs).
- profile + HTML: the same, plus the report drawn from the profile and the current statistics
  (core/drift_html.py; what ``EvidentlyDriftOperator`` runs by default, ``drift.report: profile``);
  bar (issue 27): within 2x the verdicts' time and under 500 MB at 1M x 50;
- profile + report: the verdicts plus the Evidently HTML report from a 20,000-row sample of each side
  (``drift.report: evidently``; Evidently's ~8 s import included).

``--no-baseline`` skips Evidently on the full data and the randomised cases (the reports only).

Prints time and peak-memory ratios (bars: time <= 0.05x, memory <= 0.3x) and verdict agreement,
then the agreement over randomised small and large cases (bar >= 99% over >= 200 column verdicts).
Times exclude interpreter start-up and, for the baseline, Evidently's import (in its favour).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


def make_case(folder: Path, rows: int, cols: int, shifted: int, seed: int = 0) -> dict:
    """Reference and current Parquet files: 80% float columns, 10% categorical, 10% integer; the first
    ``shifted`` columns (spread over the kinds) shifted in current."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_cat = max(1, cols // 10)
    n_int = max(1, cols // 10)
    kinds = ["cat"] * n_cat + ["int"] * n_int + ["num"] * (cols - n_cat - n_int)
    shift_at = set(np.linspace(0, cols - 1, shifted).astype(int).tolist()) if shifted else set()
    ref, cur, numeric, categorical = {}, {}, [], []
    for i, kind in enumerate(kinds):
        name, moved = f"{kind}{i}", i in shift_at
        if kind == "num":
            ref[name] = rng.normal(50, 10, rows)
            cur[name] = rng.normal(50 + (4 if moved else 0), 10, rows)
            numeric.append(name)
        elif kind == "int":
            ref[name] = rng.integers(0, 30, rows)
            cur[name] = rng.integers(0, 38 if moved else 30, rows)
            numeric.append(name)
        else:
            p = rng.dirichlet(np.ones(12) * 2)
            q = rng.dirichlet(np.ones(12) * 2) if moved else p
            labels = np.array([f"city-{j}" for j in range(12)])
            ref[name], cur[name] = labels[rng.choice(12, rows, p=p)], labels[rng.choice(12, rows, p=q)]
            categorical.append(name)
    pq.write_table(pa.table(ref), folder / "reference.parquet")
    # Row groups of 200k rows, as the scorer writes predictions (scoring.chunk_rows).
    pq.write_table(pa.table(cur), folder / "current.parquet", row_group_size=200_000)
    return {"numeric": numeric, "categorical": categorical, "shifted": sorted(kinds[i] + str(i) for i in shift_at)}


def worker(mode: str, folder: Path, numeric: list[str], categorical: list[str]) -> dict:
    if mode == "evidently":
        import evidently.presets  # noqa: F401 - import outside the timing (in the baseline's favour)
        import pandas as pd
        from mlops_pack.core.drift import summarise
        start = time.perf_counter()
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
        reference = pd.read_parquet(folder / "reference.parquet")
        current = pd.read_parquet(folder / "current.parquet")
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        snap = Report([DataDriftPreset(columns=[*numeric, *categorical], drift_share=0.3)]).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition))
        columns = summarise(snap.dict(), 0.3)["columns"]
    else:
        from mlops_pack.core.drift_profile import current_stats_parquet, drift_summary
        start = time.perf_counter()
        profile = json.loads((folder / "profile.json").read_text())
        with (folder / "current.parquet").open("rb") as fh:  # as EvidentlyDriftOperator reads it
            current = current_stats_parquet(profile, [fh])
        summary = drift_summary(profile, current, 0.3)
        columns = summary["columns"]
        if mode == "profile+html":  # the monitor's default report (drift.report: profile), written as it does
            from mlops_pack.core.drift_html import render_report, report_json
            compared = "current.parquet against the reference profile."
            (folder / "p.html").write_text(render_report("Data drift: bench", profile, current, summary, compared))
            (folder / "p.json").write_text(json.dumps(report_json(profile, current, summary, compared)))
        if mode == "profile+report":
            import pandas as pd
            from mlops_pack.core.drift import drift_report, sample_frame
            reference = sample_frame(pd.read_parquet(folder / "reference.parquet"), 20_000)
            current = sample_frame(pd.read_parquet(folder / "current.parquet"), 20_000)
            drift_report(reference, current, numeric, categorical, 0.3, folder / "r.html", folder / "r.json")
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over execve, so a child would report its parent's.
    status = Path("/proc/self/status").read_text()
    peak = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) / 1024
    return {"seconds": seconds, "peak_mb": peak, "drifted": {c: v["drifted"] for c, v in columns.items()},
            "methods": {c: v["method"] for c, v in columns.items()}}


def run_worker(mode: str, folder: Path, case: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, str(folder), json.dumps(case)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(rows: int, cols: int, shifted: int, report: bool, baseline: bool = True) -> tuple[int, int]:
    import pandas as pd
    from mlops_pack.core.drift_profile import build_profile
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        case = make_case(folder, rows, cols, shifted)
        start = time.perf_counter()
        profile = build_profile(pd.read_parquet(folder / "reference.parquet"), case["numeric"], case["categorical"])
        (folder / "profile.json").write_text(json.dumps(profile))
        built = time.perf_counter() - start
        mine = run_worker("profile", folder, case)
        if report:
            html = run_worker("profile+html", folder, case)
            assert html["drifted"] == mine["drifted"]
            print(f"{rows:,} x {cols}: verdicts {mine['seconds']:.2f} s, {mine['peak_mb']:.0f} MB peak; verdicts + "
                  f"the profile HTML report (drift.report: profile, every row) {html['seconds']:.2f} s, "
                  f"{html['peak_mb']:.0f} MB peak -> {html['seconds'] / mine['seconds']:.2f}x the verdicts' time "
                  f"(bar <= 2x), peak {'under' if html['peak_mb'] < 500 else 'OVER'} 500 MB")
        if not baseline:
            if report:
                full = run_worker("profile+report", folder, case)
                print(f"  verdicts + the 20k-row sampled Evidently HTML report (drift.report: evidently; import "
                      f"included): {full['seconds']:.1f} s ({full['seconds'] / mine['seconds']:.2f}x the verdicts), "
                      f"{full['peak_mb']:.0f} MB peak")
            return len(mine["drifted"]), len(mine["drifted"])
        base = run_worker("evidently", folder, case)
        agree = sum(base["drifted"][c] == mine["drifted"][c] for c in base["drifted"])
        same_methods = all(base["methods"][c] == mine["methods"][c] for c in base["methods"])
        ev_cols = sorted(c for c, d in base["drifted"].items() if d)
        my_cols = sorted(c for c, d in mine["drifted"].items() if d)
        print(f"{rows:,} x {cols}: Evidently full data {base['seconds']:.1f} s, {base['peak_mb']:.0f} MB peak; "
              f"profile {mine['seconds']:.2f} s, {mine['peak_mb']:.0f} MB peak "
              f"(profile built at training time in {built:.1f} s, {len(json.dumps(profile)) / 1e6:.1f} MB JSON)")
        print(f"  time {mine['seconds'] / base['seconds']:.3f}x (bar <= 0.05x), "
              f"peak memory {mine['peak_mb'] / base['peak_mb']:.2f}x (bar <= 0.3x), "
              f"verdicts {agree}/{len(base['drifted'])} equal, methods equal: {same_methods}; "
              f"drifted: Evidently {ev_cols} profile {my_cols}; shifted {case['shifted']}")
        if report:
            full = run_worker("profile+report", folder, case)
            print(f"  with the 20k-row sampled Evidently HTML report (drift.report: evidently; import included): "
                  f"{full['seconds']:.1f} s ({full['seconds'] / base['seconds']:.3f}x Evidently full data, "
                  f"{full['seconds'] / mine['seconds']:.2f}x the verdicts), {full['peak_mb']:.0f} MB peak "
                  f"({full['peak_mb'] / base['peak_mb']:.2f}x)")
        return agree, len(base["drifted"])


def randomised(cases: int) -> tuple[int, int]:
    """Agreement over random cases (tests/unit/test_drift_profile.py's generator, random sizes)."""
    import numpy as np
    import pyarrow as pa

    sys.path.insert(0, str(REPO / "tests" / "unit"))
    from mlops_pack.core.drift_profile import build_profile, profile_drift
    from test_drift_profile import evidently_columns, random_frames
    rng = np.random.default_rng(42)
    agree = total = small = 0
    for seed in range(cases):
        n_ref, n_cur = int(rng.choice([60, 300, 900, 1000, 1001, 2500, 8000, 30000])), int(rng.integers(50, 20000))
        reference, current, numeric, categorical = random_frames(1000 + seed, n_ref, n_cur)
        expected = evidently_columns(reference, current, numeric, categorical)
        got = profile_drift(json.loads(json.dumps(build_profile(reference, numeric, categorical))),
                            pa.Table.from_pandas(current, preserve_index=False).to_batches(50_000), 0.5)["columns"]
        for column, ev in expected.items():
            total += 1
            small += n_ref <= 1000
            agree += ev["drifted"] == got[column]["drifted"]
            if ev["drifted"] != got[column]["drifted"]:
                print(f"  disagree: case {seed} ({n_ref} ref rows) {column}: Evidently {ev} profile {got[column]}")
    print(f"randomised: {cases} cases, {agree}/{total} column verdicts equal ({100 * agree / total:.1f}%, "
          f"bar >= 99%), {small} of them with <= 1000 reference rows (K-S / chi-square / Z-test)")
    return agree, total


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        case = json.loads(sys.argv[4])
        print(json.dumps(worker(sys.argv[2], Path(sys.argv[3]), case["numeric"], case["categorical"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer randomised cases")
    parser.add_argument("--no-report", action="store_true", help="skip the profile + sampled report run")
    parser.add_argument("--size", action="append", help="ROWS,COLS,SHIFTED instead of the default sizes")
    parser.add_argument("--no-baseline", action="store_true", help="skip Evidently on the full data (minutes at 1M "
                        "x 50) and the randomised cases: the reports against the verdicts only")
    args = parser.parse_args()
    sizes = [(100_000, 20, 4), (30_000, 10, 3)] if args.quick else [(1_000_000, 50, 10), (300_000, 20, 4)]
    if args.size:
        sizes = [tuple(int(v) for v in size.split(",")) for size in args.size]
    for rows, cols, shifted in sizes:
        bench_size(rows, cols, shifted, report=not args.no_report, baseline=not args.no_baseline)
    if not args.no_baseline:
        randomised(6 if args.quick else 18)


if __name__ == "__main__":
    main()
