"""Batch scoring, Parquet in -> predictions Parquet out: ours vs raw predict and vs the naive way.

    python bench/score.py [--rows 1000000] [--big 10000000] [--rounds 3]

Baselines measured in the same run, each in a fresh interpreter (so its peak memory is its own):
- raw: ``estimator.predict`` on the same rows already in memory (the limit; no I/O at all);
- naive: read the whole file into pandas, MLflow pyfunc ``predict``, add the lineage columns,
  write the whole frame (what a first version of a scoring task does).
Ours is ``mlops_pack.core.score.score_parquet`` on an ObjectStoragePath, as the score task runs it.
Model: HistGradientBoostingRegressor on 10 float features. Printed: rows/s ratios (medians of
``--rounds``) and peak-RSS ratios. Design bars: ours >= 0.8x raw rows/s; at ``--big`` rows ours
>= 1.0x naive speed with <= 0.3x its peak memory; ours at ``--big`` <= 1.2x its own peak at ``--rows``.
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
FEATURES = [f"f{i}" for i in range(10)]

SETUP = r"""
import sys, numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from sklearn.ensemble import HistGradientBoostingRegressor
import mlflow.sklearn
root, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
features = [f"f{i}" for i in range(10)]
train = pd.DataFrame(rng.normal(size=(20_000, 10)), columns=features)
model = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(train, train.sum(axis=1))
import os
if not os.path.exists(f"{root}/model"):
    mlflow.sklearn.save_model(model, f"{root}/model", serialization_format="cloudpickle")
# Written with pyarrow's default 1M-row groups (what many writers outside the pack produce; the pack's
# own partitions have 128k-row groups), so the scorer must stay flat even when a row group is far
# larger than its chunk. In slices, so that generating 10M rows does not itself need gigabytes.
writer, chunk = None, 1_000_000
for start in range(0, rows, chunk):
    n = min(chunk, rows - start)
    frame = pd.DataFrame(rng.normal(size=(n, 10)), columns=features)
    frame.insert(0, "listing_id", [f"id{start + i:09d}" for i in range(n)])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    writer = writer or pq.ParquetWriter(f"{root}/in_{rows}.parquet", table.schema)
    writer.write_table(table)
writer.close()
"""

MEASURE = r"""
import json, resource, sys, time
sys.path.insert(0, {plugins!r})
mode, root, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
features = [f"f{{i}}" for i in range(10)]
lineage = {{"model_name": "bench", "model_version": "1", "scoring_run_id": "manual__2026-11-23T00:00:00+00:00"}}
import pandas as pd, pyarrow.parquet as pq, mlflow.sklearn, mlflow.pyfunc
from airflow.sdk import ObjectStoragePath
from mlops_pack.core.score import score_parquet
source = f"{{root}}/in_{{rows}}.parquet"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "raw":
    model = mlflow.sklearn.load_model(f"{{root}}/model")
    frame = pd.read_parquet(source, columns=features)
    start = time.perf_counter()
    model.predict(frame)
elif mode == "ours":
    model = mlflow.sklearn.load_model(f"{{root}}/model")
    path = ObjectStoragePath(f"file://{{source}}")
    # The first read through an ObjectStoragePath in a process loads Airflow's plugins (its hook-lineage
    # collector, 0.4-1.3 s), which a task process has done before the task runs; the other modes use
    # no ObjectStoragePath at all.
    with path.open("rb") as fh:
        fh.read(4)
    start = time.perf_counter()
    score_parquet(model, path, ObjectStoragePath(f"file://{{root}}/ours.parquet"),
                  features=features, lineage=lineage, chunk_rows=200_000, keep=["listing_id"])
else:
    model = mlflow.pyfunc.load_model(f"{{root}}/model")
    start = time.perf_counter()
    frame = pd.read_parquet(source)
    frame["prediction"] = model.predict(frame[features])
    for k, v in lineage.items():
        frame[k] = v
    frame.to_parquet(f"{{root}}/naive.parquet", index=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "peak_mb": peak / 1024, "above_imports_mb": (peak - base) / 1024}}))
"""


def measure(mode: str, root: Path, rows: int) -> dict:
    code = MEASURE.format(plugins=str(REPO / "plugins"))
    out = subprocess.run([sys.executable, "-c", code, mode, str(root), str(rows)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(root: Path, rows: int, rounds: int, modes: tuple[str, ...]) -> dict[str, dict]:
    subprocess.run([sys.executable, "-c", SETUP, str(root), str(rows)], check=True)
    results: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(rounds):  # interleaved, so machine noise hits every mode alike
        for mode in modes:
            results[mode].append(measure(mode, root, rows))
    (root / f"in_{rows}.parquet").unlink()
    return {m: {"rows_per_s": rows / statistics.median(r["seconds"] for r in runs),
                "peak_mb": statistics.median(r["peak_mb"] for r in runs),
                "above_imports_mb": statistics.median(r["above_imports_mb"] for r in runs)}
            for m, runs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000, help="0 skips the large run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        root = Path(tmp)
        small = run(root, args.rows, args.rounds, ("raw", "ours", "naive"))
        print(f"{args.rows:,} rows: " + json.dumps({m: {k: round(v, 1) for k, v in r.items()} for m, r in small.items()}))
        print(f"  ours / raw predict rows/s:  {small['ours']['rows_per_s'] / small['raw']['rows_per_s']:.2f}x (bar >= 0.8)")
        print(f"  ours / naive rows/s:        {small['ours']['rows_per_s'] / small['naive']['rows_per_s']:.2f}x")
        print(f"  ours / naive peak memory:   {small['ours']['peak_mb'] / small['naive']['peak_mb']:.2f}x")
        if args.big:
            big = run(root, args.big, 1, ("ours", "naive"))
            print(f"{args.big:,} rows: " + json.dumps({m: {k: round(v, 1) for k, v in r.items()}
                                                      for m, r in big.items()}))
            print(f"  ours / naive rows/s:        {big['ours']['rows_per_s'] / big['naive']['rows_per_s']:.2f}x "
                  "(bar >= 1.0)")
            print(f"  ours / naive peak memory:   {big['ours']['peak_mb'] / big['naive']['peak_mb']:.2f}x (bar <= 0.3)")
            print(f"  ours peak {args.big:,} / {args.rows:,} rows: {big['ours']['peak_mb'] / small['ours']['peak_mb']:.2f}x "
                  "(bar <= 1.2)")


if __name__ == "__main__":
    main()
