"""DAG-file parse time: each file in dags/ vs a trivial DAG file with the same DAGs and task counts.

    python bench/dag_parse.py [--rounds 15]

Each parse runs in a fresh interpreter that has already imported ``airflow.sdk`` (as Airflow's DAG
processor has), so the timing covers what parsing that file costs: its own imports, reading and
validating the spec, and building the DAGs. Files are interleaved round by round, so machine noise
hits both alike; the ratio of medians is printed. Design bar: <= 1.10x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TIMER = r"""
import sys, time, importlib.util
sys.path.insert(0, {plugins!r})
import airflow.sdk  # the DAG processor has this loaded before it parses a file
from airflow.sdk import DAG
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("parsed", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
dags = [v for v in vars(module).values() if isinstance(v, DAG)]
# a provider counts as loaded when more than its package and get_provider_info (read by any Airflow) is
providers = sorted({{m.split(".")[2] for m in sys.modules if m.startswith("airflow.providers.") and m.count(".") >= 3
                    and not m.endswith(".get_provider_info")}} - {{"standard", "common"}})  # the DAGs' own operators
print(elapsed, sum(len(d.tasks) for d in dags), len(dags), ",".join(providers) or "-", "boto3" in sys.modules)
"""


def trivial_dag_file(dags: list[tuple[int, str]], same_schedules: bool) -> str:
    """Source of a DAG file with plain chained EmptyOperators, one DAG per (task count, schedule kind);
    ``same_schedules`` gives each DAG the kind of schedule the pack's DAG has (a cron timetable or an
    ``x-mlops://`` asset: Airflow imports croniter, and its providers' asset-URI handlers for the first
    asset with a scheme, which cost tens of ms whoever writes the DAG)."""
    lines = ["import datetime as dt", "from airflow.sdk import DAG, Asset, CronTriggerTimetable, chain",
             "from airflow.providers.standard.operators.empty import EmptyOperator", ""]
    for i, (count, kind) in enumerate(dags):
        schedule = {"cron": "CronTriggerTimetable('0 2 * * *', timezone='UTC')",
                    "asset": f"Asset(name='a{i}', uri='x-trivial://trivial/a{i}')"}.get(kind, "None")
        schedule = schedule if same_schedules else "None"
        lines += [f"with DAG(dag_id='trivial_{i}', schedule={schedule}, start_date=dt.datetime(2026, 1, 1)) as dag_{i}:",
                  f"    chain(*[EmptyOperator(task_id=f't{{n}}') for n in range({count})])", ""]
    return "\n".join(lines)


def parse_once(path: Path) -> tuple[float, int, int, str, bool]:
    code = TIMER.format(plugins=str(REPO / "plugins"), path=str(path))
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    seconds, tasks, dags, providers, boto3 = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(tasks), int(dags), providers, boto3 == "True"


def dag_shapes(path: Path) -> list[tuple[int, str]]:
    """(task count, schedule kind: cron, asset or none) of each DAG the file defines."""
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'plugins')!r}); import importlib.util as u;"
            f"s = u.spec_from_file_location('m', {str(path)!r}); m = u.module_from_spec(s); s.loader.exec_module(m);"
            "from airflow.sdk import DAG;"
            "kind = lambda d: 'cron' if 'Cron' in type(d.timetable).__name__ else "
            "('asset' if 'Asset' in type(d.timetable).__name__ else 'none');"
            "print(*[f'{len(v.tasks)}:{kind(v)}' for v in vars(m).values() if isinstance(v, DAG)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [(int(n), k) for n, k in (x.split(":") for x in out.stdout.strip().splitlines()[-1].split())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    # dags/ reads this checkout's specs (the pack's default is $AIRFLOW_HOME/pipelines)
    os.environ.setdefault("AIRFLOW__MLOPS__PIPELINES_DIR", str(REPO / "include" / "pipelines"))
    with tempfile.TemporaryDirectory() as tmp:
        for dag_file in sorted((REPO / "dags").glob("*.py")):
            shapes = dag_shapes(dag_file)
            counts = [n for n, _ in shapes]
            baselines = {}
            for same in (True, False):
                baselines[same] = Path(tmp) / f"trivial_{dag_file.stem}_{same}.py"
                baselines[same].write_text(trivial_dag_file(shapes, same))
            times: dict[str, list[float]] = {"ours": [], "assets": [], "plain": []}
            loaded: dict[str, tuple[str, bool]] = {}
            for _ in range(args.rounds):
                for name, path in (("ours", dag_file), ("assets", baselines[True]), ("plain", baselines[False])):
                    seconds, _, _, providers, boto3 = parse_once(path)
                    times[name].append(seconds)
                    loaded[name] = (providers, boto3)
            m = {k: statistics.median(v) for k, v in times.items()}
            print(f"{dag_file.name}: {len(counts)} DAGs, {sum(counts)} tasks; parse median {m['ours'] * 1000:.1f} ms")
            for name, (providers, boto3) in loaded.items():
                print(f"  {name}: providers imported besides standard/common: {providers}; boto3 imported: {boto3}")
            print(f"  vs trivial DAG file, same tasks and schedules: {m['assets'] * 1000:.1f} ms -> "
                  f"{m['ours'] / m['assets']:.2f}x (bar <= 1.10x)")
            print(f"  vs trivial DAG file, same tasks, no schedules:  {m['plain'] * 1000:.1f} ms -> "
                  f"{m['ours'] / m['plain']:.2f}x")


if __name__ == "__main__":
    main()
