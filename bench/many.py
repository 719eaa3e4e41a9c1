"""Many pipelines on one Airflow: how DAG processing, the scheduler loop, asset-event fan-out, memory,
``mlops-pack check`` and the health index grow with the number of specs.

    .venv/bin/python bench/many.py                      # N = 1, 10, 50 (5-15 min on the 2-core machine)
    .venv/bin/python bench/many.py --n 1 --n 100 --n 200 --settle 90
    .venv/bin/python bench/many.py --check-and-index 200     # only `check` and the health index (api-server alone)

For each N, N specs are generated from the demo spec (include/pipelines/listings.yaml) into one
embedded Airflow home (cli/runner.py: SQLite, LocalExecutor, one thin DAG file per spec), with mixed
source kinds (scrape, files, sql, in turn) and schedules (a daily cron at a spec's own hour; no cron
but REST events on ``<name>.inbox``; both), every DAG paused but the probe's ingest (``p000__ingest``:
REST events only). api-server, scheduler and dag-processor run as ``mlops-pack run`` starts them, and
the bench reads what Airflow itself reports:

- DAG processing: each file's last parse time from the dag-processor's "DAG File Processing Stats"
  table (``[dag_processor] print_stats_interval`` = 10 s), and the time from start until the api-server
  serves every DAG (the first full pass, total);
- the scheduler loop: the scheduler's own "Ran scheduling loop in X ms" lines (its log at DEBUG: the
  scheduler alone, the others at INFO) over ``--settle`` seconds once every DAG is served;
- asset event to run: a REST event on ``p000.inbox`` (``POST /api/v2/assets/events``) to the ingest
  run's ``start_date`` (both Airflow's clocks), three probes; each probe's run is then marked failed
  (its scrape would wait on a closed port and retry);
- memory: the resident memory (VmRSS summed over the process group) of each Airflow process, sampled
  every 2 s; the largest sample;
- ``mlops-pack check`` of all N specs (a fresh process, as a user runs it) and ``GET /mlops/health``
  (the health index, five requests, median).

Each figure is printed with its ratio to N=1 measured in the same run (and per spec where the work is
per spec). Design bars (issue 27): linear or better; event-to-run at N=100 <= 1.5x N=1; check and the
health index at N=200 under a second. The machine is shared: ratios, not times, are the result, and
the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

KINDS = ("scrape", "files", "sql")
FIELDS = ["listing_id", "listed_on: {type: date}", "city", "condition", "area_m2: {type: number}",
          "rooms: {type: integer}", "age_years: {type: integer}", "distance_km: {type: number}", "price: {type: number}"]


def spec_text(i: int, folder: Path) -> str:
    """The demo spec as pipeline ``p<i>``: source kind ``KINDS[i % 3]``; schedule by ``i % 3`` (0: REST
    events only, 1: a daily cron, 2: both); p000 is the probe (scrape, events only)."""
    name = f"p{i:03d}"
    text = (REPO / "include" / "pipelines" / "listings.yaml").read_text()
    text = text.replace("name: listings", f"name: {name}").replace("../suites/", f"{REPO / 'include' / 'suites'}/")
    kind = KINDS[i % 3]
    if kind != "scrape":
        head, rest = text.split("\nsource:\n", 1)
        rest = rest.split("\nvalidation:\n", 1)[1]
        fields = "".join(f"    {f if ':' in f else f + ': {}'}\n" for f in FIELDS)
        source = (f"  kind: files\n  url: file://{folder}/in/{name}/\n  pattern: '*.csv'\n" if kind == "files" else
                  f"  kind: sql\n  conn_id: many_db\n  query: SELECT * FROM listings_{i}\n  watermark_column: listed_on\n")
        text = f"{head}\nsource:\n{source}  key: listing_id\n  fields:\n{fields}validation:\n{rest}"
    cron = f'"{i % 24} {(i // 24) % 24} * * *"'
    schedule = {0: "  ingest: null\nevents:\n  inbox: true\n", 1: f"  ingest: {cron}\n",
                2: f"  ingest: {cron}\nevents:\n  inbox: true\n"}[i % 3]
    return text.replace('schedule:\n  ingest: "0 2 * * *"\n', f"schedule:\n{schedule}")


def write_specs(folder: Path, n: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    specs = {}
    for i in range(n):
        path = folder / f"p{i:03d}.yaml"
        path.write_text(spec_text(i, folder.parent))
        specs[path.stem] = path
    return specs


def group_rss_mb(pgid: int) -> float:
    """VmRSS summed over the processes of process group ``pgid`` (a component and its children)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            rss = next(ln for ln in Path(entry.path, "status").read_text().splitlines() if ln.startswith("VmRSS:"))
            total += int(rss.split()[1])
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total / 1024


class MemorySampler(threading.Thread):
    def __init__(self, groups: dict[str, int]):
        super().__init__(daemon=True)
        self.groups, self.peak, self.done = groups, dict.fromkeys(groups, 0.0), threading.Event()

    def run(self) -> None:
        while not self.done.wait(2):
            for name, pgid in self.groups.items():
                self.peak[name] = max(self.peak[name], group_rss_mb(pgid))


def parse_stats(log: str) -> dict[str, float]:
    """file stem -> last parse seconds, from the last "DAG File Processing Stats" table in ``log``."""
    tables = log.split("DAG File Processing Stats")
    if len(tables) < 2:
        return {}
    out = {}
    for line in tables[-1].splitlines():
        found = re.search(r"(p\d{3})\.py", line)
        times = re.findall(r"(\d+\.\d+)s\b", line)
        if found and times and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line):
            out[found.group(1)] = float(times[-1])
    return out


def loop_times(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"Ran scheduling loop in ([\d.]+) ms", log)]


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def time_check(specs: dict[str, Path]) -> float:
    """Seconds ``mlops-pack check`` takes over the specs (it must pass)."""
    start = time.perf_counter()
    check = subprocess.run([str(Path(sys.executable).parent / "mlops-pack"), "check", *map(str, specs.values())],
                           capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"mlops-pack check failed:\n{check.stderr[-3000:]}")
    return time.perf_counter() - start


def measure(n: int, base: Path, settle: float, probes: int) -> dict:
    from mlops_pack.cli import runner

    home = base / f"home{n}"
    specs = write_specs(home / "pipelines", n)
    result: dict = {"n": n, "load_start": load()}
    result["check_s"] = time_check(specs)
    ports = runner.Ports()
    api_port = ports.take("api-server")
    runner.write_config(home, api_port, home / "pipelines", dags_folder=runner.write_dag_files(home, specs),
                        ports=ports, paused=True)
    env = {"AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "10"}
    airflow = runner.Airflow(home, api_port, list(specs), extra_env=env)
    airflow.migrate()
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    started = time.perf_counter()
    for name, args in airflow.components():
        level = {"AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG"} if name == "scheduler" else {}
        out = (logs / f"{name}.out").open("w")
        airflow.procs.append(subprocess.Popen([sys.executable, "-m", "airflow", *args], env={**airflow.env, **level},
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    sampler = MemorySampler({name: p.pid for (name, _), p in zip(airflow.components(), airflow.procs, strict=True)})
    sampler.start()
    try:
        airflow.wait_ready(timeout=max(600, 12 * n))
        result["first_pass_s"] = time.perf_counter() - started
        loop_from = len(loop_times((logs / "scheduler.out").read_text(errors="replace")))
        airflow.set_paused("p000__ingest", False)
        time.sleep(settle)
        loops = loop_times((logs / "scheduler.out").read_text(errors="replace"))[loop_from:]
        result["loop_ms"] = statistics.median(loops) if loops else float("nan")
        result["loop_p90_ms"] = sorted(loops)[int(0.9 * (len(loops) - 1))] if loops else float("nan")
        result["loops"] = len(loops)
        result["event_to_run_s"] = probe(airflow, probes)
        result["health_s"] = health(airflow)
        parse = parse_stats((logs / "dag-processor.out").read_text(errors="replace"))
        result["parse_median_s"] = statistics.median(parse.values()) if parse else float("nan")
        result["parse_sum_s"] = sum(parse.values())
        result["parsed_files"] = len(parse)
        result["rss_mb"] = dict(sampler.peak)
        result["load_end"] = load()
    finally:
        sampler.done.set()
        airflow.stop()
    return result


def measure_cli_and_index(n: int, base: Path) -> dict:
    """``mlops-pack check`` of N specs and the health index of a home of N specs, with the api-server alone
    (the index lists the pipelines' specs and storage folders: it needs no parsed DAG)."""
    from mlops_pack.cli import runner

    home = base / f"index{n}"
    specs = write_specs(home / "pipelines", n)
    result: dict = {"n": n, "load_start": load()}
    result["check_s"] = time_check(specs)
    for name in specs:  # each pipeline with a storage folder, as after its first run
        (home / "mlops-data" / name).mkdir(parents=True)
    ports = runner.Ports()
    api_port = ports.take("api-server")
    runner.write_config(home, api_port, home / "pipelines", dags_folder=runner.write_dag_files(home, specs),
                        ports=ports, paused=True)
    airflow = runner.Airflow(home, api_port, list(specs))
    airflow.migrate()
    (home / "logs").mkdir(exist_ok=True)
    out = (home / "logs" / "api-server.out").open("w")
    airflow.procs.append(subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "-p", str(api_port)],
                                          env=airflow.env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True))
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                token = airflow.http.get("/auth/token").json()["access_token"]
                break
            except Exception:  # noqa: BLE001 - still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        airflow.http.headers["Authorization"] = f"Bearer {token}"
        airflow.http.get("/mlops/health").raise_for_status()  # the first request loads the plugin app's imports
        result["health_s"] = health(airflow)
        result["health_lists"] = airflow.http.get("/mlops/health").text.count("<li>")
    finally:
        for proc in airflow.procs:
            os.killpg(proc.pid, 15)
            proc.wait()
    result["load_end"] = load()
    return result


def probe(airflow, probes: int) -> float:
    """Median seconds from a REST event on p000.inbox to the ingest run it starts (Airflow's timestamps)."""
    import datetime as dt

    asset = airflow.get("/api/v2/assets", name_pattern="p000.inbox")["assets"][0]["id"]
    seen, waits = {r["dag_run_id"] for r in airflow.runs("p000__ingest")}, []
    for _ in range(probes):
        response = airflow.http.post("/api/v2/assets/events", json={"asset_id": asset, "extra": {"probe": True}})
        response.raise_for_status()
        sent = dt.datetime.fromisoformat(response.json()["timestamp"])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            new = [r for r in airflow.runs("p000__ingest") if r["dag_run_id"] not in seen and r.get("start_date")]
            if new:
                run = new[0]
                waits.append((dt.datetime.fromisoformat(run["start_date"]) - sent).total_seconds())
                seen.add(run["dag_run_id"])
                airflow.http.patch(f"/api/v2/dags/p000__ingest/dagRuns/{run['dag_run_id']}",
                                   json={"state": "failed"}).raise_for_status()
                break
            time.sleep(0.2)
        else:
            raise TimeoutError("no ingest run started within 300 s of the probe's event")
        time.sleep(2)
    return statistics.median(waits)


def health(airflow) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        response = airflow.http.get("/mlops/health")
        times.append(time.perf_counter() - start)
        response.raise_for_status()
        assert "p000" in response.text
    return statistics.median(times)


def report(results: list[dict]) -> None:
    one = results[0]

    def ratio(value: float, base: float) -> str:
        return f"{value / base:.2f}x" if base else "-"

    print(f"\nN=1 baseline: {one}")
    for r in results:
        n = r["n"]
        print(f"N={n} (load {r['load_start']} -> {r['load_end']}):")
        print(f"  DAG parse per file: median {r['parse_median_s']:.2f} s over {r['parsed_files']} files "
              f"({ratio(r['parse_median_s'], one['parse_median_s'])} N=1; bar: flat)")
        print(f"  DAG processing, sum of the files' last parse: {r['parse_sum_s']:.1f} s "
              f"({ratio(r['parse_sum_s'] / n, one['parse_sum_s'])} N=1 per spec; bar <= 1x, linear)")
        print(f"  start to every DAG served: {r['first_pass_s']:.0f} s "
              f"({ratio(r['first_pass_s'], one['first_pass_s'])} N=1, {n}x the specs)")
        print(f"  scheduler loop: median {r['loop_ms']:.1f} ms, p90 {r['loop_p90_ms']:.1f} ms over {r['loops']} loops "
              f"({ratio(r['loop_ms'], one['loop_ms'])} N=1; linear would be {n}x)")
        print(f"  asset event -> run start: {r['event_to_run_s']:.2f} s ({ratio(r['event_to_run_s'], one['event_to_run_s'])}"
              f" N=1; bar at N=100 <= 1.5x)")
        mem = ", ".join(f"{k} {v:.0f} MB ({ratio(v, one['rss_mb'][k])})" for k, v in r["rss_mb"].items())
        print(f"  memory, largest sample per process group: {mem}")
        print(f"  mlops-pack check of {n} specs: {r['check_s']:.2f} s ({ratio(r['check_s'], one['check_s'])} N=1); "
              f"health index: {r['health_s'] * 1000:.0f} ms ({ratio(r['health_s'], one['health_s'])} N=1); "
              "bar at N=200: each under 1 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="numbers of specs (repeat; default 1, 10, 50)")
    parser.add_argument("--settle", type=float, default=40, help="seconds of scheduler loops measured per N")
    parser.add_argument("--probes", type=int, default=3, help="asset events sent per N")
    parser.add_argument("--keep", action="store_true", help="keep the homes (printed)")
    parser.add_argument("--check-and-index", type=int, action="append", metavar="N",
                        help="only `mlops-pack check` and the health index (api-server alone) at N specs, and at 1")
    args = parser.parse_args()
    if args.check_and_index:
        base = Path(tempfile.mkdtemp(prefix="many-"))
        os.environ.setdefault("MLOPS_AIRFLOW_DB_CACHE", str(base / "db-cache"))
        try:
            rows = [measure_cli_and_index(n, base) for n in sorted(set(args.check_and_index) | {1})]
        finally:
            shutil.rmtree(base, ignore_errors=True)
        for r in rows:
            print(f"N={r['n']} (load {r['load_start']} -> {r['load_end']}): mlops-pack check {r['check_s']:.2f} s "
                  f"({r['check_s'] / rows[0]['check_s']:.2f}x N=1); health index {r['health_s'] * 1000:.0f} ms "
                  f"({r['health_s'] / rows[0]['health_s']:.2f}x N=1), {r['health_lists']} pipelines listed; "
                  "bar: each under 1 s at N=200")
        return
    counts = sorted(set(args.n or [1, 10, 50]) | {1})
    base = Path(tempfile.mkdtemp(prefix="many-"))
    os.environ.setdefault("MLOPS_AIRFLOW_DB_CACHE", str(base / "db-cache"))  # one migration for all homes
    results = []
    try:
        for n in counts:
            print(f"N={n} ...", flush=True)
            results.append(measure(n, base, args.settle, args.probes))
            print(f"  {results[-1]}", flush=True)
        report(results)
    finally:
        if args.keep:
            print(f"homes kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
