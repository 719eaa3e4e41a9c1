"""File-source memory: the streamed reader (``FileSourceHook.chunks`` + per-chunk typing) vs pandas.read_csv whole.

    .venv/bin/python bench/file_source.py                    # CSVs of 100 MB and 1 GB
    .venv/bin/python bench/file_source.py --mb 100 --mb 300  # other sizes
    .venv/bin/python bench/file_source.py --keep             # also: the typed rows kept (what publishing holds)

Each size: a listings CSV (id, price, rooms, area, city, listed_on, a 40-character description,
~100 bytes a row) is generated under /tmp and deleted afterwards. Each contender runs in its own
fresh process, so its peak RSS is its own (VmHWM from /proc/self/status; Linux carries ru_maxrss
over execve, so a child's ru_maxrss may report its parent's):

- floor: the imports and Airflow's ObjectStoragePath set-up only (interpreter, pandas, pyarrow,
  airflow.sdk, provider discovery), done first in every process and outside every timing; printed so
  the figures can be read (peak over the floor is what the read itself costs);
- pandas whole: ``pandas.read_csv(path, dtype=str)`` of the whole file (the reader before issue 25
  read the bytes whole first, then this: more still);
- stream: what FileIngestOperator reads (``FileSourceHook.chunks``: 1 MiB blocks through the NUL
  and size guard, 50,000-row frames, each typed by ``core.columns.type_frame`` before the next);
  the typed chunk is dropped, so this is the reader's own memory;
- stream + keep (``--keep``): the same, keeping every typed chunk, as the ingest task does until it
  writes the raw partitions.

Prints peak MB and ratios (to the file's size, and stream / pandas whole); bar: the 1 GB file read
with a peak under 300 MB. Both readers must count the same rows; the script stops if they differ.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
BAR_MB = 300
FIELDS = {"listing_id": "string", "price": "number", "rooms": "integer", "area_m2": "number", "city": "string",
          "listed_on": "date", "description": "string"}


def make_csv(path: Path, mb: int) -> int:
    """A CSV of about ``mb`` MB: one block of 200,000 random rows, written again and again with its ids
    renumbered (fast to write; a reader's cost does not depend on the values repeating). Returns the
    row count."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    block = 200_000
    frame = pd.DataFrame({
        "listing_id": [f"B00000-{i:06d}" for i in range(block)],
        "price": np.round(rng.uniform(50_000, 900_000, block), 2),
        "rooms": rng.integers(1, 8, block),
        "area_m2": np.round(rng.uniform(20, 250, block), 1),
        "city": rng.choice(["Berlin", "Hamburg", "Munich", "Cologne"], block),
        "listed_on": rng.choice(["2026-11-01", "2026-11-02", "2026-11-03"], block),
        "description": rng.choice([f"bright flat, balcony, floor {k}, quiet street" for k in range(9)], block),
    })
    header, body = frame.to_csv(index=False).split("\n", 1)
    rows = 0
    with path.open("w") as fh:
        fh.write(header + "\n")
        while fh.tell() < mb * 1_000_000:
            fh.write(body.replace("B00000-", f"B{rows // block:05d}-"))
            rows += block
    return rows


def worker(mode: str, path: Path) -> dict:
    import pandas as pd
    from mlops_pack.core.columns import capped, type_frame
    from mlops_pack.core.file_source import FileInfo
    from mlops_pack.core.spec.sources import ColumnSpec
    from mlops_pack.hooks.table_source import FileSourceHook

    hook = FileSourceHook(f"file://{path.parent}/")
    with hook.path(f"file://{path}").open("rb") as fh:  # Airflow's ObjectStoragePath set-up (provider discovery)
        pd.read_csv(io.BytesIO(fh.read(10_000)), dtype=str, nrows=10)  # and pandas' parser modules: in every floor
    start = time.perf_counter()
    rows = problems = 0
    if mode == "pandas":
        rows = len(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    elif mode != "floor":
        fields = {name: ColumnSpec(type=kind) for name, kind in FIELDS.items()}
        kept = []
        for chunk in hook.chunks(FileInfo(f"file://{path}", path.stat().st_size), "csv", max_bytes=2_000_000_000):
            rows += len(chunk)
            if mode != "read":
                typed, found, _ = type_frame(chunk, fields, str(path))
                problems += len(capped(found))
                if mode == "read+type+keep":
                    kept.append(typed)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()
    peak = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) / 1024
    return {"seconds": seconds, "peak_mb": peak, "rows": rows, "problems": problems}


def run_worker(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, str(path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(mb: int, modes: list[str]) -> bool:
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="h25-bench-") as tmp:
        path = Path(tmp) / "listings.csv"
        start = time.perf_counter()
        rows = make_csv(path, mb)
        size_mb = path.stat().st_size / 1_000_000
        print(f"{size_mb:,.0f} MB CSV, {rows:,} rows (generated in {time.perf_counter() - start:.0f} s), "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        floor = run_worker("floor", path)["peak_mb"]
        print(f"  imports only: {floor:.0f} MB peak", flush=True)
        results, met = {}, True
        for mode in modes:
            got = results[mode] = run_worker(mode, path)
            if got["rows"] != rows or got["problems"]:
                sys.exit(f"{mode} read {got['rows']} rows with {got['problems']} problems, expected {rows} and 0")
            line = (f"  {LABELS[mode]}: {got['peak_mb']:.0f} MB peak ({got['peak_mb'] - floor:.0f} MB over the "
                    f"imports; {got['peak_mb'] / size_mb:.3f}x the file), {got['seconds']:.0f} s")
            if mode in ("read", "read+type"):
                met = met and got["peak_mb"] < BAR_MB
                line += f"; bar < {BAR_MB} MB {'met' if got['peak_mb'] < BAR_MB else 'NOT met'}"
            if mode != "pandas" and "pandas" in results:
                base = results["pandas"]
                line += (f"; vs pandas whole: peak {got['peak_mb'] / base['peak_mb']:.3f}x, "
                         f"time {got['seconds'] / base['seconds']:.2f}x")
            print(line, flush=True)
        return met


LABELS = {"pandas": "pandas.read_csv whole", "read": "stream (read)", "read+type": "stream (read + type)",
          "read+type+keep": "stream, typed rows kept"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, action="append", help="file size in MB (repeatable); default 100 and 1000")
    parser.add_argument("--keep", action="store_true", help="also: the typed rows kept (what publishing holds)")
    parser.add_argument("--whole-max-mb", type=int, default=1000,
                        help="run the pandas-whole baseline only up to this size (it needs ~6x the file in RAM)")
    parser.add_argument("--type-max-mb", type=int, default=100,
                        help="type the chunks only up to this size (value-by-value typing is the slow part)")
    args = parser.parse_args()
    met = []
    for mb in args.mb or [100, 1000]:
        modes = ["pandas"] if mb <= args.whole_max_mb else []
        modes += ["read"] + (["read+type"] if mb <= args.type_max_mb else [])
        modes += ["read+type+keep"] if args.keep and mb <= args.type_max_mb else []
        met.append(bench_size(mb, modes))
    print("bar met at every size" if all(met) else "bar NOT met")

if __name__ == "__main__":
    main()
