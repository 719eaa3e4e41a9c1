"""Realized performance: the pack's streaming join + metrics vs pandas merge + scikit-learn, 1M and 10M rows.

    .venv/bin/python bench/outcomes.py [--rows 1000000] [--big 10000000] [--rounds 3] [--big-rounds 1]
                                       [--no-baseline-big]

Data, written as Parquet like the pack's own partitions: predictions as core/score.py writes them
(text key ``listing_id``, ``prediction``, ``proba_0``/``proba_1``, dictionary-encoded lineage
columns, 128k-row groups) and labels in another order (a random permutation): 80% of the keys
labelled, 2% of those delivered twice, 0.1% contradicted by a later delivery.

Each contender runs in its own fresh interpreter, so its peak RSS (``ru_maxrss``) is its own:
- ours: ``core.outcomes.realized_performance`` (accuracy, f1, roc_auc, log_loss, plus Brier and ECE,
  each with a 1000-replicate bootstrap CI, coverage, conflicts), what the outcomes task runs;
- baseline: ``pandas.read_parquet`` of both files (the needed columns), labels de-duplicated by key
  (last wins), ``merge`` on the key, scikit-learn's ``accuracy_score``, ``f1_score(average="macro")``,
  ``roc_auc_score``, ``log_loss`` and ``brier_score_loss``: point values only, no intervals (in its favour).

Printed: seconds, peak MB, ratios. Bars (issue 22): ours at ``--big`` <= 1.2x its own peak at
``--rows``; ours no slower than the baseline and <= 0.3x its peak memory. The two must agree on
every point value (checked, printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SETUP = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
root, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
chunk = 131_072
lineage = {"model_name": "bench", "model_version": "3", "scoring_run_id": "manual__2026-11-23T00:00:00+00:00"}
dictionary = [k for k in ("listing_id", "prediction", *lineage)]
truth = np.empty(rows, dtype=np.int8)
with pq.ParquetWriter(f"{root}/pred_{rows}.parquet", pa.schema([
        ("listing_id", pa.string()), ("prediction", pa.int64()), ("proba_0", pa.float64()), ("proba_1", pa.float64()),
        *[(k, pa.dictionary(pa.int32(), pa.string())) for k in lineage]]), use_dictionary=dictionary) as writer:
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        p1 = rng.beta(2, 2, n)
        truth[start:start + n] = rng.uniform(size=n) < p1 ** 1.2
        ids = pa.array(np.char.add("id", np.char.zfill(np.arange(start, start + n).astype(str), 9)))
        columns = [ids, pa.array((p1 > 0.5).astype(np.int64)), pa.array(1 - p1), pa.array(p1)]
        columns += [pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([v])) for v in lineage.values()]
        writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=writer.schema))
# Labels: 80% of the keys, in a random order; 2% of them re-delivered, 0.1% contradicted later.
labelled = rng.permutation(rows)[: int(rows * 0.8)]
again = labelled[rng.uniform(size=len(labelled)) < 0.02]
flipped = labelled[rng.uniform(size=len(labelled)) < 0.001]
order = [(labelled, False), (again, False), (flipped, True)]
with pq.ParquetWriter(f"{root}/labels_{rows}.parquet", pa.schema([("listing_id", pa.string()), ("label", pa.int64())])) as writer:
    for keys, flip in order:
        for start in range(0, len(keys), chunk):
            part = keys[start:start + chunk]
            label = truth[part].astype(np.int64)
            ids = pa.array(np.char.add("id", np.char.zfill(part.astype(str), 9)))
            writer.write_batch(pa.record_batch({"listing_id": ids, "label": pa.array(1 - label if flip else label)}))
"""

MEASURE = r"""
import json, resource, sys, time
sys.path.insert(0, {plugins!r})
mode, root, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
pred, labels = f"{{root}}/pred_{{rows}}.parquet", f"{{root}}/labels_{{rows}}.parquet"
# Each mode imports what it uses (the imports are part of its memory, not of its time). pyarrow imports
# pandas at its first array conversion, so ours pays pandas' import too: before the clock, like the baseline.
if mode == "ours":
    from mlops_pack.core import outcome_join, outcome_metrics, outcomes
    import numpy, pandas, pyarrow.parquet
else:
    import numpy as np, pandas as pd
    from sklearn import metrics as skm
start = time.perf_counter()
if mode == "ours":
    report = outcomes.realized_performance([outcomes.PredictionSource("2026-11-23__v3", pred)], [labels],
        key="listing_id", task="classification", metrics=["accuracy", "f1", "roc_auc", "log_loss"],
        work_dir=root)
    group = report.groups[0]
    values = {{m: e.value for m, e in group.metrics.items()}}
    extra = {{"labelled": group.labelled_rows, "conflicts": report.conflicts.keys, "ci_accuracy": [
        group.metrics["accuracy"].low, group.metrics["accuracy"].high]}}
else:
    p = pd.read_parquet(pred, columns=["listing_id", "prediction", "proba_0", "proba_1"])
    y = pd.read_parquet(labels).drop_duplicates("listing_id", keep="last")
    joined = p.merge(y, on="listing_id", how="inner")
    truth, proba = joined["label"].to_numpy(), joined[["proba_0", "proba_1"]].to_numpy()
    values = {{"accuracy": skm.accuracy_score(truth, joined["prediction"]),
              "f1": skm.f1_score(truth, joined["prediction"], average="macro"),
              "roc_auc": skm.roc_auc_score(truth, proba[:, 1]), "log_loss": skm.log_loss(truth, proba),
              "brier_score": skm.brier_score_loss(truth, proba[:, 1])}}
    extra = {{"labelled": len(joined)}}
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "peak_mb": peak / 1024, "values": values, **extra}}))
"""


def measure(mode: str, root: Path, rows: int) -> dict:
    code = MEASURE.format(plugins=str(REPO / "plugins"))
    out = subprocess.run([sys.executable, "-c", code, mode, str(root), str(rows)], capture_output=True, text=True)
    if out.returncode:
        return {"failed": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(root: Path, rows: int, rounds: int, modes: tuple[str, ...]) -> dict[str, dict]:
    subprocess.run([sys.executable, "-c", SETUP, str(root), str(rows)], check=True)
    results: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(rounds):  # interleaved, so machine noise hits every mode alike
        for mode in modes:
            results[mode].append(measure(mode, root, rows))
    for name in (f"pred_{rows}.parquet", f"labels_{rows}.parquet"):
        (root / name).unlink()
    summary = {}
    for mode, runs in results.items():
        ok = [r for r in runs if "failed" not in r]
        if not ok:
            summary[mode] = runs[0]
            continue
        summary[mode] = {**ok[0], "seconds": statistics.median(r["seconds"] for r in ok),
                         "peak_mb": statistics.median(r["peak_mb"] for r in ok)}
    return summary


def report(rows: int, result: dict[str, dict]) -> None:
    ours, base = result["ours"], result.get("baseline")
    print(f"{rows:,} rows: ours {ours['seconds']:.1f} s, {ours['peak_mb']:.0f} MB; labelled {ours['labelled']:,}, "
          f"conflicting keys {ours['conflicts']:,}; accuracy CI {[round(x, 4) for x in ours['ci_accuracy']]}")
    if base is None:
        return
    if "failed" in base:
        print(f"  baseline failed: {base['failed']}")
        return
    print(f"  baseline {base['seconds']:.1f} s, {base['peak_mb']:.0f} MB; labelled {base['labelled']:,}")
    worst = max(abs(ours["values"][m] - base["values"][m]) for m in base["values"])
    print(f"  largest difference of a point value vs the baseline: {worst:.2g}")
    print(f"  ours / baseline time:        {ours['seconds'] / base['seconds']:.2f}x (bar <= 1.0)")
    print(f"  ours / baseline peak memory: {ours['peak_mb'] / base['peak_mb']:.2f}x (bar <= 0.3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000, help="0 skips the large run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds at --rows (medians)")
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds at --big")
    parser.add_argument("--no-baseline-big", action="store_true", help="skip the baseline at --big rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-outcomes-") as tmp:
        root = Path(tmp)
        small = run(root, args.rows, args.rounds, ("ours", "baseline"))
        report(args.rows, small)
        if args.big:
            big = run(root, args.big, args.big_rounds, ("ours",) if args.no_baseline_big else ("ours", "baseline"))
            report(args.big, big)
            print(f"  ours peak {args.big:,} / {args.rows:,} rows: "
                  f"{big['ours']['peak_mb'] / small['ours']['peak_mb']:.2f}x (bar <= 1.2)")


if __name__ == "__main__":
    main()
