"""The production-shaped stack as processes on this machine (the topology of docker-compose.yml).

    python deploy/stack.py up   [--home stack_home]    # make stack
    python deploy/stack.py down [--home stack_home]    # make stack-down
    python deploy/stack.py compose-init                # docker-compose.yml's airflow-init, after the migration

Airflow's metadata DB in its own database on the local PostgreSQL, CeleryExecutor with the local
Redis as broker and PostgreSQL as result backend, two ``airflow celery worker`` processes with
distinct host names (both also listen on the ``training`` queue the train task uses),
scheduler, dag-processor, triggerer, api-server; ``mlflow server`` on PostgreSQL with its artifacts
in S3; S3 itself served on loopback by ``moto_server``; and the demo site.

One place describes the topology: :func:`topology` renders every service's command and environment
either for this machine (``native``) or for the containers of docker-compose.yml (``compose``), and
tests/stack/test_compose.py checks that the compose file says the same.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE = "listings"
TRAINING_QUEUE = "training"
JWT_ISSUER = "airflow-mlops-pack"
# moto accepts any credentials; they only exist so that boto3/s3fs sign requests. A real bucket's
# credentials belong in the aws_default connection (or an instance role), never in this file.
MOTO_KEY, MOTO_SECRET, REGION = "moto-access-key", "moto-secret-key", "us-east-1"

# Scheduling latency of the loop (docs/deploy.md): the scheduler loops every second when idle and
# re-parses DAG files only when they change; workers take two tasks each.
TUNING = {
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    # A lost task (worker killed, machine gone) is noticed within a minute, not Airflow's default five:
    # task supervisors heartbeat every 5 s ([workers] min_heartbeat_interval), so 45 s is nine missed
    # beats, and the scheduler looks for them every 5 s. The task then fails and its retry is queued.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}


@dataclass
class Endpoints:
    """Where each service answers: host names and ports (containers or loopback)."""

    postgres: str = "127.0.0.1:5432"
    pg_user: str = "postgres"
    pg_password: str = ""
    redis: str = "127.0.0.1:6379"
    redis_db: int = 0
    s3: str = "127.0.0.1:5001"
    mlflow: str = "127.0.0.1:5000"
    api: str = "127.0.0.1:28080"
    site: str = "127.0.0.1:8765"
    bind: str = "127.0.0.1"  # the address servers listen on
    mlflow_ui: str = ""  # where a browser reaches MLflow (the extra links), default: ``mlflow``


@dataclass
class StackConfig:
    home: Path
    endpoints: Endpoints = field(default_factory=Endpoints)
    db_prefix: str = "mlops_stack"
    bucket: str = "mlops-stack"
    jwt_secret: str = "change-me-shared-by-every-airflow-component"
    admin_password: str = ""  # native stack: written to the simple auth manager's passwords file
    records: int = 2000
    dags_folder: str = str(REPO / "dags")
    pipelines_dir: str = ""  # default: <home>/pipelines

    @property
    def airflow_db(self) -> str:
        return f"{self.db_prefix}_airflow"

    @property
    def mlflow_db(self) -> str:
        return f"{self.db_prefix}_mlflow"

    @property
    def search_db(self) -> str:
        """model.search: the Optuna studies every worker's trials share."""
        return f"{self.db_prefix}_search"

    def pg_url(self, db: str, driver: str = "postgresql+psycopg2") -> str:
        e = self.endpoints
        auth = f"{e.pg_user}:{e.pg_password}" if e.pg_password else e.pg_user
        return f"{driver}://{auth}@{e.postgres}/{db}"


def compose_config() -> StackConfig:
    """The values docker-compose.yml uses (container host names, the compose file's defaults)."""
    return StackConfig(
        home=Path("/opt/airflow"),
        endpoints=Endpoints(postgres="postgres:5432", pg_user="airflow", pg_password="airflow", redis="redis:6379",
                            s3="s3:5000", mlflow="mlflow:5000", api="airflow-apiserver:8080", site="demo-site:8765",
                            bind="0.0.0.0", mlflow_ui="localhost:5000"),
        db_prefix="mlops", bucket="mlops", dags_folder="/opt/airflow/dags", pipelines_dir="/opt/airflow/pipelines",
    )


def aws_connection(cfg: StackConfig) -> str:
    return json.dumps({"conn_type": "aws", "login": MOTO_KEY, "password": MOTO_SECRET,
                       "extra": {"endpoint_url": f"http://{cfg.endpoints.s3}", "region_name": REGION}},
                      sort_keys=True, separators=(",", ":"))


def airflow_env(cfg: StackConfig) -> dict[str, str]:
    """The configuration every Airflow component shares (compose: ``x-airflow-common``)."""
    e = cfg.endpoints
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
                                       "SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__DAGS_FOLDER": cfg.dags_folder,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{e.api}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": cfg.pg_url(cfg.airflow_db),
        "AIRFLOW__CELERY__RESULT_BACKEND": cfg.pg_url(cfg.airflow_db, "db+postgresql"),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{e.redis}/{e.redis_db}",
        "AIRFLOW__API_AUTH__JWT_SECRET": cfg.jwt_secret,
        "AIRFLOW__API_AUTH__JWT_ISSUER": JWT_ISSUER,
        "AIRFLOW__API__HOST": e.bind,
        "AIRFLOW__API__PORT": e.api.rsplit(":", 1)[1],
        "AIRFLOW__MLOPS__PIPELINES_DIR": cfg.pipelines_dir or str(cfg.home / "pipelines"),
        "AIRFLOW__MLOPS__STORAGE_ROOT": f"s3://{cfg.bucket}/mlops",
        "AIRFLOW__MLOPS__STORAGE_CONN_ID": "aws_default",
        "AIRFLOW__MLOPS__TRAINING_QUEUE": TRAINING_QUEUE,
        "AIRFLOW__MLOPS__SEARCH_CONN_ID": "mlops_search",
        "AIRFLOW_CONN_MLOPS_SEARCH": cfg.pg_url(cfg.search_db, "postgresql"),
        "AIRFLOW__MLOPS__MLFLOW_UI_URL": f"http://{e.mlflow_ui or e.mlflow}",
        # Task logs go to the bucket too: the api-server reads a finished task's log from S3, whichever
        # worker ran it, and no worker keeps a copy.
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "true",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{cfg.bucket}/logs",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
        "AIRFLOW__LOGGING__DELETE_LOCAL_LOGS": "true",
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(cfg),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": f"http://{e.mlflow}"},
                                                  separators=(",", ":")),
        **TUNING,
    }


def mlflow_env(cfg: StackConfig) -> dict[str, str]:
    """The tracking server alone touches S3 for artifacts (workers go through its proxy)."""
    return {"MLFLOW_S3_ENDPOINT_URL": f"http://{cfg.endpoints.s3}", "AWS_ACCESS_KEY_ID": MOTO_KEY,
            "AWS_SECRET_ACCESS_KEY": MOTO_SECRET, "AWS_DEFAULT_REGION": REGION,
            # MLflow 3's job runner (huey consumers for GenAI jobs) is not used by the loop: no idle workers
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def topology(cfg: StackConfig) -> dict[str, dict]:
    """Each service: ``command`` (argv) and ``environment`` (on top of the process's own)."""
    e = cfg.endpoints
    port = {name: getattr(e, name).rsplit(":", 1)[1] for name in ("s3", "mlflow", "api", "site")}
    common = airflow_env(cfg)

    def airflow(*args: str) -> dict:
        return {"command": ["airflow", *args], "environment": common}

    return {
        "s3": {"command": ["moto_server", "-H", e.bind, "-p", port["s3"]], "environment": {}},
        "mlflow": {"command": ["mlflow", "server", "--backend-store-uri", cfg.pg_url(cfg.mlflow_db),
                               "--artifacts-destination", f"s3://{cfg.bucket}/mlflow", "--host", e.bind,
                               "--port", port["mlflow"], "--workers", "1",
                               "--allowed-hosts", f"{e.mlflow},localhost:*,127.0.0.1:*"],
                   "environment": mlflow_env(cfg)},
        "demo-site": {"command": ["python", "include/demo_site/server.py", "--host", e.bind, "--port", port["site"],
                                  "--records", str(cfg.records)], "environment": {}},
        "airflow-apiserver": airflow("api-server"),
        "airflow-scheduler": airflow("scheduler"),
        "airflow-dag-processor": airflow("dag-processor"),
        "airflow-triggerer": airflow("triggerer"),
        # Both workers serve the training queue: a retry of a train task whose worker died runs on the other
        # one at once instead of waiting for the dead worker to come back.
        "airflow-worker": airflow("celery", "worker", "--celery-hostname", "worker-1@%h", "--queues",
                                  f"default,{TRAINING_QUEUE}"),
        "airflow-worker-training": airflow("celery", "worker", "--celery-hostname", "worker-2@%h", "--queues",
                                           f"default,{TRAINING_QUEUE}"),
    }


# Task instances record the host they ran on. Containers have their own host names; two workers on
# one machine get theirs from this variable (deploy/worker_hostname.py is the hostname_callable).
WORKER_HOSTNAMES = {"airflow-worker": "worker-1", "airflow-worker-training": "worker-2"}


def spec_text(site: str) -> str:
    """The demo spec pointed at the demo site ``site`` (host:port), with no nightly cron (the demo and
    the tests move the site's days themselves) and the demo's retrain policy (drift retrains; new data
    is scored and monitored), as include/demo_site/loop.py runs it."""
    text = (REPO / "include" / "pipelines" / f"{PIPELINE}.yaml").read_text()
    for old, new in {"127.0.0.1:8765": site, "../suites/": f"{REPO / 'include' / 'suites'}/",
                     'ingest: "0 2 * * *"': "ingest: null",
                     "\npromotion:\n": "\nretrain:\n  triggers: [drift]\npromotion:\n"}.items():
        if old not in text:
            raise ValueError(f"spec edit {old!r} matches nothing in {PIPELINE}.yaml")
        text = text.replace(old, new)
    return text


# ---------------------------------------------------------------- running it on this machine


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _admin(cfg: StackConfig):
    import psycopg2

    host, port = cfg.endpoints.postgres.rsplit(":", 1)
    conn = psycopg2.connect(host=host, port=int(port), user=cfg.endpoints.pg_user, dbname="postgres")
    conn.autocommit = True
    return conn


def create_databases(cfg: StackConfig) -> list[str]:
    """Create the stack's databases (Airflow, MLflow, the search studies) and return their names; refuses,
    changing nothing, when any exists already: the stack drops only databases it created itself."""
    wanted = [cfg.airflow_db, cfg.mlflow_db, cfg.search_db]
    conn = _admin(cfg)  # autocommit: CREATE/DROP DATABASE refuse a transaction block
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (wanted,))
            existing = sorted(row[0] for row in cur.fetchall())
            if existing:
                raise RuntimeError(f"database(s) {existing} already exist on {cfg.endpoints.postgres}: the stack "
                                   "creates its own and drops only those; drop them yourself or use another db_prefix")
            for db in wanted:
                cur.execute(f'CREATE DATABASE "{db}"')
    finally:
        conn.close()
    return wanted


def drop_databases(cfg: StackConfig, names: list[str]) -> None:
    """Drop ``names``: the databases :func:`create_databases` created (recorded in stack.json)."""
    conn = _admin(cfg)
    try:
        with conn.cursor() as cur:
            for db in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        conn.close()


def clear_broker(cfg: StackConfig) -> None:
    """Remove what Celery left in the broker's Redis DB: its queues, bindings and unacked messages."""
    import redis

    host, port = cfg.endpoints.redis.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), db=cfg.endpoints.redis_db)
    try:
        client.delete("unacked", "unacked_index", "default", TRAINING_QUEUE,
                      *client.scan_iter("_kombu.binding.*"))
    finally:
        client.close()


def s3_client(cfg: StackConfig):
    import boto3

    return boto3.client("s3", endpoint_url=f"http://{cfg.endpoints.s3}", aws_access_key_id=MOTO_KEY,
                        aws_secret_access_key=MOTO_SECRET, region_name=REGION)


def site_addresses(site: str, timeout: float = 300) -> list[str]:
    """The IPv4 addresses (``ip:port``) a container host name resolves to, once it resolves."""
    import socket

    host, port = site.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
            return sorted({f"{info[4][0]}:{port}" for info in infos})
        except socket.gaierror:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def prepare(cfg: StackConfig, name_site_address: bool = False) -> None:
    """Write the demo spec, pointed at the demo site, into the pipelines folder.

    ``name_site_address`` (containers): the demo site's container address is private, and the scrape
    policy fetches a private address only when ``allowed_hosts`` names that IP (docs/ingestion.md,
    "Safety"), so the address it resolves to now is named beside its host name."""
    pipelines = Path(cfg.pipelines_dir or cfg.home / "pipelines")
    pipelines.mkdir(parents=True, exist_ok=True)
    text, site = spec_text(cfg.endpoints.site), cfg.endpoints.site
    if name_site_address:
        allowed = f'allowed_hosts: ["{site}"]'
        if allowed not in text:
            raise ValueError(f"spec edit {allowed!r} matches nothing in {PIPELINE}.yaml")
        text = text.replace(allowed, f"allowed_hosts: {json.dumps([site, *site_addresses(site)])}")
    (pipelines / f"{PIPELINE}.yaml").write_text(text)


def create_bucket(cfg: StackConfig) -> None:
    s3 = s3_client(cfg)
    if cfg.bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=cfg.bucket)


class Stack:
    """Start, wait for and stop the stack's processes; the state file lets another process stop them."""

    def __init__(self, cfg: StackConfig):
        self.cfg = cfg
        self.logs = cfg.home / "logs"
        self.state_file = cfg.home / "stack.json"
        self.pids: dict[str, int] = {}
        self.databases: list[str] = []  # created by this stack: the only ones down() drops

    def env(self, service: dict, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "MLFLOW_"))}
        env.update(AIRFLOW_HOME=str(self.cfg.home), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                   GIT_PYTHON_REFRESH="quiet", **service["environment"])
        if name in ("airflow-worker", "airflow-worker-training", "airflow-triggerer"):
            # One machine, several log servers: each gets a free port (containers each have 8793/8794).
            key = "TRIGGER" if name == "airflow-triggerer" else "WORKER"
            env[f"AIRFLOW__LOGGING__{key}_LOG_SERVER_PORT"] = str(_free_port())
        if name in WORKER_HOSTNAMES:
            env.update(MLOPS_WORKER_HOSTNAME=WORKER_HOSTNAMES[name],
                       AIRFLOW__CORE__HOSTNAME_CALLABLE="worker_hostname.hostname",
                       PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "deploy"), env.get("PYTHONPATH")])))
        return env

    def spawn(self, name: str) -> None:
        service = topology(self.cfg)[name]
        argv = list(service["command"])
        argv[0] = sys.executable if argv[0] == "python" else _bin(argv[0])
        out = (self.logs / f"{name}.log").open("a")
        proc = subprocess.Popen(argv, env=self.env(service, name), cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.pids[name] = proc.pid
        self._save()

    def airflow(self, *args: str) -> None:
        service = topology(self.cfg)["airflow-scheduler"]
        subprocess.run([_bin("airflow"), *args], env=self.env(service, "init"), cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _save(self) -> None:
        self.state_file.write_text(json.dumps({"config": _config_json(self.cfg), "pids": self.pids,
                                               "databases": self.databases}, indent=2))

    def up(self, timeout: float = 240) -> None:
        """Everything the compose file's ``airflow-init`` and services do, in the same order."""
        cfg = self.cfg
        cfg.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        prepare(cfg)
        if cfg.admin_password:
            (cfg.home / "simple_auth_manager_passwords.json.generated").write_text(
                json.dumps({"admin": cfg.admin_password}))
        self._save()
        self.databases = create_databases(cfg)
        self._save()
        self.spawn("s3")
        _wait_healthy(cfg.endpoints.s3, HEALTH["s3"], "moto S3", timeout=60, check=self.check)
        create_bucket(cfg)
        for name in ("mlflow", "demo-site"):
            self.spawn(name)
        # airflow-init: migrate the metadata DB and create the registry pool, before any component starts.
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "mlops_registry", "1", "MLflow registry writes: one promotion at a time")
        for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                     "airflow-worker", "airflow-worker-training"):
            self.spawn(name)
        for name, what in (("mlflow", "MLflow"), ("site", "demo site"), ("api", "Airflow api-server")):
            _wait_healthy(getattr(cfg.endpoints, name), HEALTH[name], what, timeout=timeout, check=self.check)

    def check(self) -> None:
        """RuntimeError naming a process that exited (and its log)."""
        for name, pid in self.pids.items():
            if not _alive(pid):
                raise RuntimeError(f"stack process {name} exited; see {self.logs / (name + '.log')}")

    def down(self) -> None:
        _stop(self.pids)
        self.pids = {}
        drop_databases(self.cfg, self.databases)
        self.databases = []
        clear_broker(self.cfg)
        if self.state_file.exists():
            self.state_file.unlink()


class Client:
    """A small client of the stack's Airflow REST API (password login, as a real user would)."""

    TERMINAL = ("success", "failed")

    def __init__(self, cfg: StackConfig):
        import httpx

        self.http = httpx.Client(base_url=f"http://{cfg.endpoints.api}", timeout=30)
        self.password = cfg.admin_password
        self.dags = [f"{PIPELINE}__{stage}" for stage in ("ingest", "train", "score", "monitor")]

    def login(self) -> None:
        answer = self.http.post("/auth/token", json={"username": "admin", "password": self.password})
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        answer = self.http.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def wait_ready(self, timeout: float, check=None) -> None:
        """Until the api-server lists every DAG of the pipeline."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.login()
                if set(self.dags) <= {d["dag_id"] for d in self.get("/api/v2/dags", limit=100)["dags"]}:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if check is not None:
                check()
            time.sleep(2)
        raise TimeoutError(f"Airflow did not serve {self.dags} within {timeout:.0f}s")

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        answer = self.http.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        answer.raise_for_status()
        return answer.json()["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="run_after", limit=100)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def unfinished_runs(self) -> list[dict]:
        """The pipeline's queued or running runs, in one request (``wait_quiet`` asks every second)."""
        runs = self.get("/api/v2/dags/~/dagRuns", state=["queued", "running"], limit=100)["dag_runs"]
        return [r for r in runs if r["dag_id"] in self.dags and r["state"] not in self.TERMINAL]

    def queued_events(self) -> bool:
        """Does a DAG of the pipeline have asset events queued for its next run? The scheduler creates that
        run on a later loop: on a loaded machine that can be many seconds after the event (a drift event
        whose retrain had not started 6 s later was seen), so it is asked for, not waited out."""
        for dag_id in self.dags:
            answer = self.http.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")
            if answer.status_code == 404:  # nothing queued
                continue
            answer.raise_for_status()
            if answer.json()["queued_events"]:
                return True
        return False

    def wait_quiet(self, timeout: float, settle: float = 10, check=None) -> None:
        """Until no run of the pipeline is queued or running, no asset event waits for one, and none started
        for ``settle`` s."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.unfinished_runs() or self.queued_events():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            if check is not None:
                check()
            time.sleep(1)
        raise TimeoutError(f"the loop was still busy after {timeout:.0f}s")


class TaskMemorySampler:
    """Peak resident memory of each task process on this machine, keyed by task instance id.

    Airflow's task runner titles its process ``airflow worker -- <ti id>``; a thread samples those
    processes (with their children) every ``interval`` seconds. Sizing, not a limit: a task shorter
    than the interval may be missed.
    """

    def __init__(self, interval: float = 0.5):
        import threading

        self.interval, self.peaks = interval, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="task-memory-sampler")

    def __enter__(self) -> TaskMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            for proc in psutil.process_iter(["cmdline"]):
                try:
                    title = " ".join(proc.info["cmdline"] or [])
                    if not title.startswith("airflow worker -- "):
                        continue
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                except (psutil.Error, OSError):
                    continue
                ti = title.split(" -- ", 1)[1].strip()
                self.peaks[ti] = max(self.peaks.get(ti, 0), rss)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited:
            return False
    except ChildProcessError:
        pass  # not our child (stopped from another process): ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _stop(pids: dict[str, int], grace: float = 30) -> None:
    """SIGTERM each process group we started (Airflow components first, S3 last), then SIGKILL."""
    order = sorted(pids, key=lambda n: (n in ("s3", "mlflow"), n))
    for name in order:
        try:
            os.killpg(pids[name], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for name in order:
        while _alive(pids[name]) and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            os.killpg(pids[name], signal.SIGKILL)
        except ProcessLookupError:
            pass


# Each service's own health endpoint (the compose file's health checks): a listener alone is not ready.
HEALTH = {"s3": "/moto-api/", "mlflow": "/health", "site": "/robots.txt", "api": "/api/v2/version"}


def _wait_healthy(where: str, path: str, what: str, timeout: float, check=None) -> None:
    """Until ``GET http://<where><path>`` answers 2xx."""
    import urllib.error
    import urllib.request

    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{where}{path}", timeout=5) as answer:
                if 200 <= answer.status < 300:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except OSError as error:
            last = str(error)
        if check is not None:
            check()
        time.sleep(0.5)
    raise TimeoutError(f"{what} was not healthy at http://{where}{path} within {timeout:.0f}s ({last})")


def _config_json(cfg: StackConfig) -> dict:
    data = asdict(cfg)
    data["home"] = str(cfg.home)
    return data


def _load(home: Path) -> Stack:
    state = json.loads((home / "stack.json").read_text())
    data = state["config"]
    cfg = StackConfig(**{**data, "home": Path(data["home"]), "endpoints": Endpoints(**data["endpoints"])})
    stack = Stack(cfg)
    stack.pids = state["pids"]
    stack.databases = state.get("databases", [])
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "compose-init"])
    parser.add_argument("--home", type=Path, default=REPO / "stack_home")
    parser.add_argument("--pg-user", default=os.environ.get("PGUSER", "postgres"))
    # Sharing a machine: every port, the database names and the broker's Redis database are options.
    default = Endpoints()
    parser.add_argument("--postgres", default=default.postgres, help="PostgreSQL host:port")
    parser.add_argument("--redis", default=default.redis, help="Redis host:port")
    parser.add_argument("--redis-db", type=int, default=default.redis_db, help="the Celery broker's Redis database")
    parser.add_argument("--db-prefix", default="mlops_stack", help="databases <prefix>_airflow and <prefix>_mlflow")
    parser.add_argument("--bucket", default="mlops-stack")
    for name in ("api", "mlflow", "s3", "site"):
        parser.add_argument(f"--{name}-port", type=int, default=int(getattr(default, name).rsplit(":", 1)[1]))
    args = parser.parse_args()
    home = args.home.resolve()
    if args.action == "compose-init":
        cfg = compose_config()
        prepare(cfg, name_site_address=True)
        create_bucket(cfg)
        print(f"[stack] wrote {cfg.pipelines_dir}/{PIPELINE}.yaml; bucket {cfg.bucket} ready")
        return
    if args.action == "down":
        if not (home / "stack.json").exists():
            sys.exit(f"no stack running from {home} (no stack.json)")
        _load(home).down()
        print(f"[stack] stopped; the databases it created dropped; logs stay in {home / 'logs'}")
        return
    if (home / "stack.json").exists():
        sys.exit(f"a stack already runs from {home}: make stack-down first")
    if home.exists():
        shutil.rmtree(home)
    endpoints = Endpoints(pg_user=args.pg_user, postgres=args.postgres, redis=args.redis, redis_db=args.redis_db,
                          **{name: f"127.0.0.1:{getattr(args, name + '_port')}" for name in ("api", "mlflow", "s3", "site")})
    cfg = StackConfig(home=home, endpoints=endpoints, db_prefix=args.db_prefix, bucket=args.bucket,
                      jwt_secret=secrets.token_hex(24), admin_password=secrets.token_urlsafe(12))
    stack = Stack(cfg)
    try:
        stack.up()
    except BaseException:
        stack.down()
        raise
    e = cfg.endpoints
    print(f"[stack] up from {home}\n  Airflow  http://{e.api} (admin / {cfg.admin_password})\n  MLflow   http://{e.mlflow}\n"
          f"  S3       http://{e.s3} bucket {cfg.bucket}\n  demo     http://{e.site}/listings\n"
          f"  logs     {home / 'logs'}\n  stop:    make stack-down")


if __name__ == "__main__":
    main()
