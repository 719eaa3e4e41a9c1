"""8 promoter processes x 20 rounds against ``mlflow server`` on PostgreSQL, with faults injected at the
step boundaries of lock, judge and alias moves, kill -9 of holders and of the server.

Checks: one promotion per round, champion always one of the round's versions, exactly one record per
attempt (the killed ones are recorded by whoever breaks their lock or repairs their intent), no two
lock holders ever (from the trace each holder writes: enter/exit/broken/write), recovery <= 2 minutes.
The promoters are MlflowPromoteOperator with a cheap evaluate (predictions synthesised from a
``quality`` tag, judged by the real gate) and a 6 s lease, so the whole test fits in a few minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.env import REPO
from tests.support.mlflow_server import server_on_new_database
from tests.support.specs import write_spec
from tests.support.waiting import DEADLINE

pytestmark = pytest.mark.integration

ROUNDS, WORKERS, LEASE = 20, 8, 5
SERVER_KILL_ROUND, HOLDER_KILL_ROUND = 16, 18
ONCE = "@{ctl}/once_{r}"  # a fault for every worker that fires in the first to reach it
FAULTS = {  # round -> worker -> MLOPS_FAULT_POINT ("*": every worker)
    2: {"*": "alias.previous_moved:kill" + ONCE},  # the winner dies between the two alias moves
    4: {1: "lock.acquired:kill"},  # holding the lock, nothing written
    6: {2: "lock.heartbeat:sleep:30,lock.acquired:sleep:7"},  # stalled holder: lease lost, fenced out
    8: {"*": "alias.intent_written:kill" + ONCE, 3: "judge.after:raise"},  # gate crash -> decision error
    10: {3: "lock.acquired:kill", 4: "lock.stale_seen:sleep:1", 5: "lock.stale_seen:sleep:1"},  # two breakers
    12: {"*": "alias.champion_moved:kill" + ONCE},  # champion moved, not recorded
    14: {"*": "alias.recorded:kill" + ONCE, 6: "lock.created:sleep:0.5"},  # recorded, intent not cleared
    SERVER_KILL_ROUND: {"*": "alias.previous_moved:sleep:4" + ONCE},  # the server is killed in this sleep
    HOLDER_KILL_ROUND: {7: "lock.acquired:sleep:4"},  # the test kill -9s this holder
}

WORKER = r"""
import json, os, sys, time, types
sys.path[:0] = [{plugins!r}, {repo!r}]
import numpy as np
from mlops_pack.core.promotion.gate import judge
from mlops_pack.operators.promote import MlflowPromoteOperator
import mlflow.exceptions, mlops_pack.hooks.mlflow, mlops_pack.hooks.storage, mlops_pack.core.storage  # noqa: imported once, before the forks
from airflow.sdk.exceptions import AirflowNotFoundException

N = 400
Y = np.random.default_rng(0).normal(100, 20, N)


class Harness(MlflowPromoteOperator):
    def evaluate(self, version, champion):
        def predict(v):
            tags = self.mlflow.version_tags(self.spec.name, v)
            return Y + np.random.default_rng(int(tags["seed"])).normal(0, float(tags["quality"]), N)

        other = predict(champion) if champion not in (None, version) else None
        result = judge(Y, predict(version), other, self.spec.promotion)
        return {{**result.as_dict(), "model": self.spec.name, "version": version, "champion_evaluated": champion}}


def run(worker, r, ctl):
  while True:
      plan_path = f"{{ctl}}/round_{{r}}.json"
      while not os.path.exists(plan_path):
          if os.path.exists(f"{{ctl}}/stop"):
              os._exit(0)
          time.sleep(0.05)
      plan = json.load(open(plan_path))
      version = plan["versions"][str(worker)]
      os.environ["MLOPS_FAULT_POINT"] = plan["faults"].get(str(worker), "")
      op = Harness(task_id="promote", spec_path={spec!r}, storage_root={root!r}, challenger_version=version,
                   mlflow_conn_id="mlflow_lock_test", lock_lease_seconds={lease}, lock_wait_seconds=150,
                   max_reevaluations=4)
      context = {{"dag": types.SimpleNamespace(dag_id="lockrace__train"), "run_id": f"r{{r}}_w{{worker}}"}}
      out, started = {{"worker": worker, "round": r, "version": version}}, time.time()
      try:
          out["record"] = op.execute(context)
      except BaseException as exc:
          out["error"] = f"{{type(exc).__name__}}: {{exc}}"
      out["seconds"] = round(time.time() - started, 2)
      with open(f"{{ctl}}/result_{{r}}_{{worker}}.tmp", "w") as fh:
          json.dump(out, fh)
      os.rename(f"{{ctl}}/result_{{r}}_{{worker}}.tmp", f"{{ctl}}/result_{{r}}_{{worker}}.json")
      r += 1


# A zygote: one process pays the imports (~10 s here), then forks a promoter per request in ~10 ms.
import signal
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
ctl = sys.argv[1]
for line in sys.stdin:
    worker, first = map(int, line.split())
    pid = os.fork()
    if pid == 0:
        log = os.open(f"{{ctl}}/worker_{{worker}}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 1)  # nobody reads the zygote's stdout once started: a full pipe would block
        os.dup2(log, 2)
        run(worker, first, ctl)
        os._exit(0)
    print(f"PID {{pid}}", flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_on_new_database("mlops_lock", tmp_path_factory.mktemp("lock-server")) as srv:
        yield srv


def register_versions(uri: str) -> tuple[str, list[list[str]]]:
    """v1 (champion, quality 10) and 8 versions per round; round r's are better than round r-1's."""
    from mlflow import MlflowClient

    client = MlflowClient(uri, uri)
    run = client.create_run(client.create_experiment("lockrace"))
    client.create_registered_model("lockrace")

    def version(quality: float, seed: int) -> str:  # a round's versions predict identically: one winner
        return str(client.create_model_version("lockrace", source=f"runs:/{run.info.run_id}/model",
                                               run_id=run.info.run_id, tags={"quality": f"{quality:.6g}", "seed": str(seed)},
                                               await_creation_for=0).version)

    first = version(10, 1000)
    client.set_registered_model_alias("lockrace", "champion", first)
    client.set_model_version_tag("lockrace", first, "decision", "promoted")
    return first, [[version(10 * 0.8 ** (r + 1), r) for _ in range(WORKERS)] for r in range(ROUNDS)]


class Fleet:
    """Promoter processes forked by a zygote; ``procs`` maps worker -> pid."""

    def __init__(self, code: str, ctl: Path, env: dict[str, str]):
        self.ctl, self.procs = ctl, {}
        self.zygote = subprocess.Popen([sys.executable, "-c", code, str(ctl)], env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)

    def spawn(self, worker: int, first_round: int) -> None:
        self.zygote.stdin.write(f"{worker} {first_round}\n")
        self.zygote.stdin.flush()
        line = ""
        while not line.startswith("PID "):  # Airflow may log to stdout first
            line = self.zygote.stdout.readline()
            assert line, "the promoter zygote died: see the worker logs"
        self.procs[worker] = int(line.split()[1])

    def alive(self, worker: int) -> bool:
        try:
            os.kill(self.procs[worker], 0)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        (self.ctl / "stop").write_text("")
        deadline = time.monotonic() + 30
        while any(self.alive(w) for w in self.procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.zygote.stdin.close()
        self.zygote.wait(timeout=30)

    def finish_round(self, r: int, timeout: float = DEADLINE) -> dict[int, dict | None]:
        """Each worker's result of round ``r``; None for a worker killed during it (respawned)."""
        results: dict[int, dict | None] = {}
        deadline = time.monotonic() + timeout
        while len(results) < WORKERS:
            assert time.monotonic() < deadline, f"round {r} did not finish: {sorted(results)}"
            for w in list(self.procs):
                path = self.ctl / f"result_{r}_{w}.json"
                if w in results:
                    continue
                if path.exists():
                    results[w] = json.loads(path.read_text())
                elif not self.alive(w):
                    results[w] = None
                    self.spawn(w, r + 1)
            time.sleep(0.1)
        return results


def trace_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(path: Path, since: float, event: str, alias: str | None = None, pid: int | None = None,
             timeout: float = DEADLINE) -> dict:
    """The first trace event ``event`` after ``since`` (by ``pid``, on ``alias``, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in trace_events(path):
            if e["t"] > since and e["event"] == event and pid in (None, e["pid"]) and alias in (None, e.get("alias")):
                return e
        time.sleep(0.05)
    raise AssertionError(f"no {event} {alias or ''} by pid {pid} in {path}")


def check_no_two_holders(events: list[dict]) -> None:
    """Holding intervals [enter, exit-or-broken] are disjoint, and every alias write lies inside its own."""
    start, end = {}, {}
    for e in events:
        if e["event"] == "enter":
            start[e["token"]] = e["t"]
        elif e["event"] in ("exit", "broken"):
            end.setdefault(e["token"], e["t"])
    intervals = sorted((start[t], end.get(t, float("inf")), t) for t in start)
    for (_, e1, t1), (s2, _, t2) in zip(intervals, intervals[1:], strict=False):
        assert s2 >= e1, f"two holders: {t1[:8]} held until {e1} when {t2[:8]} entered at {s2}"
    held = {t: (s, e) for s, e, t in intervals}
    for w in (e for e in events if e["event"] == "write"):
        s, e = held[w["token"]]
        assert s <= w["t"] <= e, f"write {w} outside its holder's interval"


def check_records(hook, folder: Path, rounds: list[list[str]], champions: list[str], results: dict) -> None:
    # exactly one champion every round: one of that round's versions (each round's are better)
    for r, champion in enumerate(champions):
        assert champion in rounds[r], (r, champion, rounds[r])
    # exactly one record per attempt, and one promotion per round
    records = [json.loads(p.read_text()) for p in folder.iterdir()]
    by_version: dict[str, list[dict]] = {}
    for rec in records:
        by_version.setdefault(rec["version"], []).append(rec)
    for r, versions in enumerate(rounds):
        got = {v: [x["decision"] for x in by_version.get(v, [])] for v in versions}
        assert all(len(d) == 1 for d in got.values()), (r, got, results[r])
        assert sum(d == ["promoted"] for d in got.values()) == 1, (r, got, results[r])
    assert len({rec["attempt"] for rec in records}) == len(records) == ROUNDS * WORKERS
    decisions = {rec["decision"] for rec in records}
    assert {"promoted", "rejected", "abandoned", "error"} <= decisions, decisions
    # tags agree with the records
    for rec in records[:: max(1, len(records) // 20)]:
        assert hook.version_tags("lockrace", rec["version"])["decision"] == rec["decision"]


def test_eight_promoters_twenty_rounds_with_kills(server, tmp_path, monkeypatch):
    from mlops_pack.hooks.mlflow import MlflowHook

    started = time.monotonic()
    monkeypatch.setenv("AIRFLOW__MLOPS__MLFLOW_TRACKING_URI", server.url)
    first, rounds = register_versions(server.url)
    spec = write_spec(tmp_path / "spec", "http://127.0.0.1:9", name="lockrace",
                      **{"bootstrap_samples: 1000": "bootstrap_samples: 200"})
    root, ctl, trace = f"file://{tmp_path / 'data'}", tmp_path / "ctl", tmp_path / "lock-trace.jsonl"
    ctl.mkdir()
    code = WORKER.format(plugins=str(REPO / "plugins"), repo=str(REPO), spec=str(spec), root=root, lease=LEASE)
    env = {**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "MLOPS_LOCK_TRACE": str(trace),
           "AIRFLOW__MLOPS__MLFLOW_TRACKING_URI": server.url}
    print(f"\nsetup {time.monotonic() - started:.0f}s", flush=True)
    fleet = Fleet(code, ctl, env)
    for w in range(WORKERS):
        fleet.spawn(w, 0)
    hook, champions, results, recoveries = MlflowHook("mlflow_lock_test"), [], {}, {}
    try:
        for r in range(ROUNDS):
            faults = {w: f.format(ctl=ctl, r=r) for w, f in FAULTS.get(r, {}).items()}
            plan = {"versions": {str(w): v for w, v in enumerate(rounds[r])},
                    "faults": {str(w): faults.get(w, faults.get("*", "")) for w in range(WORKERS)}}
            (ctl / f"round_{r}.tmp").write_text(json.dumps(plan))
            round_start = time.time()
            (ctl / f"round_{r}.tmp").rename(ctl / f"round_{r}.json")
            if r == SERVER_KILL_ROUND:  # the first promoter of the round sleeps between its alias moves
                wait_for(trace, round_start, "write", "previous")
                time.sleep(1.5)  # the others have judged and wait for the lock
                killed_at = time.time()
                server.kill()
                server.start()
                recoveries["server"] = killed_at
            if r == HOLDER_KILL_ROUND:
                holder = wait_for(trace, round_start, "enter", pid=fleet.procs[7])
                os.kill(holder["pid"], signal.SIGKILL)
                recoveries["holder"] = time.time()
            results[r] = fleet.finish_round(r)
            champions.append(hook.alias_version("lockrace", "champion"))
    finally:
        fleet.close()
    elapsed = time.monotonic() - started

    check_records(hook, tmp_path / "data" / "lockrace" / "promotions", rounds, champions, results)
    # no two holders ever, writes only under one's own lease
    events = trace_events(trace)
    check_no_two_holders(events)
    assert sum(e["event"] == "broken" for e in events) >= 6
    # recovery: the next holder entered within 2 minutes of each kill
    for what, killed_at in recoveries.items():
        nxt = min(e["t"] for e in events if e["event"] == "enter" and e["t"] > killed_at)
        recoveries[what] = round(nxt - killed_at, 1)
        assert recoveries[what] <= 120, recoveries
    hook.client.get_registered_model("lockrace")  # the registry answers after the restart
    print(f"\n8x{ROUNDS} rounds in {elapsed:.0f}s; recovery after kill -9: {recoveries}")
