"""Task start-up: the demo loop with task processes that import their libraries vs ones that inherit them.

    python bench/task_start.py [--records 600]

Runs the demo loop (include/demo_site/loop.py: three market days through real Airflow processes) twice at
the same time, in two homes on separate ports, so machine noise hits both alike:

- ``fork``: Airflow's default start method, so executor workers are forks of the scheduler and every task
  process imports pandas, scikit-learn, MLflow, Great Expectations or Evidently itself;
- ``forkserver``: the embedded home's configuration (runner.write_config): the workers come from a
  forkserver that imported mlops_pack/task_imports.py first, so a task starts with them loaded.

Prints each home's loop wall time and its task time (the sum of every task instance's duration, and the
median per task id), and the ratio forkserver / fork. Task time is what the change is about; the loop's
wall time also holds Airflow's start-up and scheduling.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start(home: Path, ports: str, records: int, start_method: str) -> subprocess.Popen:
    env = {**os.environ, "AIRFLOW__SCHEDULER__MP_START_METHOD": start_method}
    log = (home.parent / f"{home.name}.log").open("w")
    return subprocess.Popen([sys.executable, str(REPO / "include" / "demo_site" / "loop.py"), "--home", str(home),
                             "--port-range", ports, "--records", str(records)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def task_times(home: Path) -> dict[str, list[float]]:
    """task id -> durations (s) of its finished instances."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("select task_id, duration from task_instance where duration is not null "
                          "and state in ('success', 'skipped')").fetchall()
    found: dict[str, list[float]] = {}
    for task, duration in rows:
        found.setdefault(task, []).append(duration)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600, help="listings per demo day")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-task-start-"))
    homes = {"fork": base / "fork", "forkserver": base / "forkserver"}
    began = time.monotonic()
    procs = {name: start(home, ports, args.records, name)
             for (name, home), ports in zip(homes.items(), ("33000-33019", "33020-33039"), strict=True)}
    walls: dict[str, float] = {}
    while len(walls) < len(procs):
        for name, proc in procs.items():
            if name not in walls and proc.poll() is not None:
                if proc.returncode:
                    sys.exit(f"the {name} loop failed; see {base / name}.log")
                walls[name] = time.monotonic() - began
        time.sleep(1)
    times = {name: task_times(home) for name, home in homes.items()}
    totals = {name: sum(sum(v) for v in t.values()) for name, t in times.items()}
    print(f"{'task':<22}{'fork median s':>15}{'forkserver median s':>22}{'ratio':>8}")
    for task in sorted(times["fork"]):
        a, b = statistics.median(times["fork"][task]), statistics.median(times["forkserver"].get(task, [float("nan")]))
        print(f"{task:<22}{a:>15.1f}{b:>22.1f}{b / a:>8.2f}")
    print(f"\ntask time, all tasks: fork {totals['fork']:.0f} s, forkserver {totals['forkserver']:.0f} s, "
          f"ratio {totals['forkserver'] / totals['fork']:.2f}")
    print(f"loop wall time (both started together): fork {walls['fork']:.0f} s, forkserver {walls['forkserver']:.0f} s")
    print(f"homes and logs: {base}")


if __name__ == "__main__":
    main()
