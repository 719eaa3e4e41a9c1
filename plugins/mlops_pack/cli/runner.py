"""An Airflow of its own for a folder of pipeline specs: home, config, processes and a small REST client.

Used by ``mlops-pack run`` / ``mlops-pack ui`` and by the demo driver (include/demo_site/loop.py).
The home holds everything: ``airflow.cfg`` (SQLite metadata DB, LocalExecutor, ports for the
api-server and the log servers), ``dags/`` with one thin DAG file per spec of the user's folder
(so no other spec on the machine is loaded), the MLflow store and the pipelines' data.

Every server binds to 127.0.0.1, on ports from the caller's ``--port-range START-END`` (:class:`Ports`)
or free ones. The caller's ``AIRFLOW__*`` variables reach the processes and win over ``airflow.cfg`` as
in any Airflow (``AIRFLOW__API__PORT`` picks the api-server's port), except those naming where a home
is (:data:`HOME_SETTINGS`): another home's (a test process's, say) would point this one's processes there.
The scheduler and triggerer serve no logs (``--skip-serve-logs``): Airflow's log server listens on every
interface, and the api-server of a home reads its task logs from the home's own files.

Standard library and httpx only at import: Airflow loads every module under plugins/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from mlops_pack.core.access import LoginError
from mlops_pack.core.errors import MlopsError

if TYPE_CHECKING:
    from collections.abc import Callable

STAGES = ("ingest", "train", "score", "monitor")
TERMINAL = {"success", "failed"}
RUNNER_FILE = "mlops-runner.json"
PAGE = 100  # entries per request to a paged list endpoint: Airflow's default [api] maximum_page_limit


# Where a home is: its airflow.cfg says so, and a caller's variable for one of these is not taken.
HOME_SETTINGS = frozenset({
    "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__UNIT_TEST_MODE",  # a test process's: would load Airflow's test configuration instead
    "AIRFLOW__MLOPS__PIPELINES_DIR", "AIRFLOW__MLOPS__STORAGE_ROOT", "AIRFLOW__MLOPS__MLFLOW_TRACKING_URI",
    "AIRFLOW__MLOPS__MLFLOW_ARTIFACT_ROOT",
    # Who may log in is the home's (--user, users.txt, --no-login: see write_login), not a caller's variable.
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "AIRFLOW__CORE__AUTH_MANAGER", "AIRFLOW__MLOPS__LOCAL_MODE"})
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # Airflow's name for it, in the home


class PortRangeError(MlopsError, ValueError):
    """A ``--port-range`` that is malformed or has no free port left."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Can a server listen on 127.0.0.1:``port``? (As servers do, with SO_REUSEADDR: a port whose last
    connections linger in TIME_WAIT is free.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def parse_port_range(text: str | None) -> range | None:
    """``"START-END"`` (both included, 1024..65535) -> a range; None for None or ""."""
    if not text:
        return None
    start, sep, end = text.partition("-")
    if not (sep and start.strip().isdigit() and end.strip().isdigit()):
        raise PortRangeError(f"--port-range must be START-END (such as 28000-28099), got {text!r}")
    low, high = int(start), int(end)
    if not 1024 <= low <= high <= 65535:
        raise PortRangeError(f"--port-range {text}: need 1024 <= START <= END <= 65535")
    return range(low, high + 1)


class Ports:
    """Ports for a home's servers on 127.0.0.1: each from ``span`` (a :func:`parse_port_range`) when given,
    else any free one; never the same port twice, never one something already listens on."""

    def __init__(self, span: range | None = None):
        self.span, self.given = span, set()

    def take(self, what: str, wanted: int | None = None) -> int:
        """A port for ``what`` (named in the error): ``wanted`` as it is (the user chose it), or a free one."""
        if wanted:
            self.given.add(wanted)
            return wanted
        if self.span is None:
            while (port := free_port()) in self.given:
                pass
            self.given.add(port)
            return port
        for port in self.span:
            if port not in self.given and port_is_free(port):
                self.given.add(port)
                return port
        raise PortRangeError(f"--port-range {self.span.start}-{self.span.stop - 1}: no free port left for {what} "
                             f"(taken here: {sorted(self.given)}); give a wider range")


def caller_env() -> dict[str, str]:
    """The caller's environment for a home's processes: every ``AIRFLOW__*`` variable but
    :data:`HOME_SETTINGS`, and no MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI (``mlflow.set_tracking_uri``
    exports them: they would point the processes' MLflow at the caller's registry)."""
    return {k: v for k, v in os.environ.items()
            if k not in HOME_SETTINGS and k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}


def api_port(ports: Ports, wanted: int | None = None) -> int:
    """The api-server's port: ``wanted`` (``--api-port``), else the caller's ``AIRFLOW__API__PORT``, else
    one from ``ports``."""
    env = os.environ.get("AIRFLOW__API__PORT", "")
    return ports.take("the api-server", wanted or (int(env) if env.isdigit() else None))


def dag_ids(pipelines: list[str]) -> list[str]:
    return [f"{name}__{stage}" for name in pipelines for stage in STAGES]


def write_dag_files(home: Path, specs: dict[str, Path]) -> Path:
    """``<home>/dags/<name>.py`` for each spec (name -> absolute spec path); other files there are removed."""
    folder = home / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.py"):
        if old.stem not in specs:
            old.unlink()
    for name, path in specs.items():
        (folder / f"{name}.py").write_text(
            f'"""airflow DAGs of the {name} pipeline, built from {path} (written by mlops-pack)."""\n\n'
            "from mlops_pack.dag_factory import build_dags\n\n"
            f"globals().update(build_dags({str(path)!r}))\n")
    return folder


# What the forkserver of an embedded home's executor imports before it starts workers: Airflow's task
# runner, then the libraries the pack's tasks use (mlops_pack/task_imports.py says why).
FORKSERVER_PRELOAD = ("airflow.sdk", "airflow.sdk.execution_time.supervisor", "airflow.sdk.execution_time.task_runner",
                      "airflow.executors.local_executor", "mlops_pack.task_imports")


class HomeLogin:
    """How a home's Airflow is logged in to (:func:`write_login`): its users and passwords file, or local mode."""

    def __init__(self, home: Path, local_mode: bool, users: list[Any], new_passwords: dict[str, str]):
        self.home, self.local_mode, self.users, self.new_passwords = home, local_mode, users, new_passwords

    @property
    def passwords_file(self) -> Path:
        return self.home / PASSWORDS_FILE

    def describe(self, url: str) -> list[str]:
        """What to tell the person at the terminal: where to log in and as whom. A password is shown only
        the time it is made; after that, the passwords file has it."""
        if self.local_mode:
            return [f"{url}: local mode (--no-login): no login, anyone on this machine acts as Airflow's "
                    "anonymous admin and decisions are recorded as 'Anonymous'"]
        lines = [f"log in at {url} as one of: {', '.join(str(u) for u in self.users)} (users: {self.home / 'users.txt'})"]
        for name, password in self.new_passwords.items():
            lines.append(f"  new password of {name}: {password}")
        lines.append(f"  passwords of every user: {self.passwords_file}")
        return lines


def write_login(home: Path, users: list[str] | None = None, local_mode: bool = False) -> HomeLogin:
    """The home's login: with ``local_mode`` none; else the users ``NAME:ROLE`` given (``--user``, kept in
    ``<home>/users.txt`` for the next command), else those of users.txt, else the person at the terminal
    as an admin (core/access.py ``default_login``). Each user without a password gets a generated one in
    Airflow's passwords file (``simple_auth_manager_passwords.json.generated``, readable by its owner
    only); passwords already there are kept."""
    import getpass

    from mlops_pack.core.access import USERS_FILE, default_login, parse_logins

    if local_mode:
        return HomeLogin(home, True, [], {})
    users_file = home / USERS_FILE
    kept = parse_logins(users_file.read_text().splitlines()) if users_file.exists() and not users else []
    logins = parse_logins(users) if users else kept
    if not logins:  # nobody named: the person at the terminal
        try:
            os_user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container): the default name
            os_user = None
        logins = [default_login(os_user)]
    if logins != kept:
        users_file.write_text("# Users of this Airflow home, one NAME:ROLE a line (roles: viewer, user, op, admin);\n"
                              "# `mlops-pack run/ui --user NAME:ROLE` rewrites this file.\n"
                              + "".join(f"{login}\n" for login in logins))
    passwords_file = home / PASSWORDS_FILE
    passwords = json.loads(passwords_file.read_text() or "{}") if passwords_file.exists() else {}
    new = {login.name: _password() for login in logins if login.name not in passwords}
    if new:
        passwords.update(new)
        partial = passwords_file.with_suffix(".partial")
        partial.write_text(json.dumps(passwords) + "\n")
        partial.chmod(0o600)
        os.replace(partial, passwords_file)
    return HomeLogin(home, False, logins, new)


def _password() -> str:
    """A password as the simple auth manager makes them: 16 letters and digits, none easily confused."""
    alphabet = "abcdefghkmnpqrstuvwxyzABCDEFGHKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def acting_credentials(home: Path) -> tuple[str, str] | None:
    """(user, password) a command of this home logs in to the REST API with (core/access.py ``acting_user``);
    None in local mode. Read from the home's airflow.cfg and passwords file."""
    import configparser

    from mlops_pack.core.access import acting_user, parse_logins

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home / "airflow.cfg")
    if cfg.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return None
    logins = parse_logins(cfg.get("core", "simple_auth_manager_users", fallback="").split(","))
    user = acting_user(logins)
    passwords_file = Path(cfg.get("core", "simple_auth_manager_passwords_file", fallback=str(home / PASSWORDS_FILE)))
    return user.name, json.loads(passwords_file.read_text())[user.name]


def write_config(home: Path, api_port: int, spec_dir: Path, *, dags_folder: Path, paused: bool = False,
                 parallelism: int = 4, ports: Ports | None = None, mlflow_ui_url: str | None = None,
                 users: list[str] | None = None, local_mode: bool = False) -> HomeLogin:
    """An airflow.cfg for the embedded default; Airflow fills in every other default. Returns its login.

    Servers listen on 127.0.0.1: the api-server on ``api_port``, the log servers (when a caller turns
    them on) on ports from ``ports``. ``mlflow_ui_url`` is where the plugin's MLflow links redirect.
    Login (:func:`write_login`): Airflow's simple auth manager with the home's named users, or with
    ``local_mode`` none at all (``simple_auth_manager_all_admins`` and ``[mlops] local_mode``).

    The plugins folder is the home's own: the pack registers through its ``airflow.plugins`` entry
    point, and a plugins folder holding the package (this checkout's plugins/) would make every task
    compile its ``.airflowignore`` with pathspec's deprecated GitWildMatchPattern, a warning at the
    top of each task log.
    """
    from mlops_pack.core.access import users_setting

    home.mkdir(parents=True, exist_ok=True)
    login = write_login(home, users, local_mode)
    jwt = secrets.token_hex(16)
    ports = ports or Ports()
    log_ports = ports.take("the worker log server"), ports.take("the triggerer log server")
    mlflow_ui = f"mlflow_ui_url = {mlflow_ui_url}\n" if mlflow_ui_url else ""
    (home / "airflow.cfg").write_text(f"""[core]
dags_folder = {dags_folder}
plugins_folder = {home / 'plugins'}
load_examples = False
executor = LocalExecutor
parallelism = {parallelism}
dags_are_paused_at_creation = {paused}
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_all_admins = {local_mode}
simple_auth_manager_users = {users_setting(login.users)}
simple_auth_manager_passwords_file = {login.passwords_file}
execution_api_server_url = http://127.0.0.1:{api_port}/execution/
[database]
sql_alchemy_conn = sqlite:///{home / 'airflow.db'}
[api]
port = {api_port}
host = 127.0.0.1
base_url = http://127.0.0.1:{api_port}
[api_auth]
jwt_secret = {jwt}
[logging]
worker_log_server_port = {log_ports[0]}
trigger_log_server_port = {log_ports[1]}
[scheduler]
scheduler_heartbeat_sec = 2
# Task processes fork from executor workers that a forkserver started with the tasks' libraries
# imported (mlops_pack/task_imports.py): a task does not import pandas, scikit-learn and MLflow again.
mp_start_method = forkserver
mp_forkserver_preload = {",".join(FORKSERVER_PRELOAD)}
# A task whose process was killed is noticed within minutes, not Airflow's default five: supervisors
# heartbeat every 5 s. The production stack uses 45 s (deploy/stack.py); an embedded home shares its
# machine with anything, and a loaded laptop or CI box can stall a live task's beats for a while, so
# here 120 s (24 missed beats) tells a dead task from a slow one.
task_instance_heartbeat_timeout = 120
task_instance_heartbeat_timeout_detection_interval = 5
[dag_processor]
refresh_interval = 10
[mlops]
pipelines_dir = {spec_dir}
storage_root = file://{home / 'mlops-data'}
mlflow_tracking_uri = {tracking_uri(home)}
mlflow_artifact_root = file://{home / 'mlartifacts'}
local_mode = {local_mode}
{mlflow_ui}""")
    return login


def tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


def init_mlflow(home: Path, *, wait: bool = True) -> subprocess.Popen | None:
    """Create the MLflow SQLite schema once, before tasks race to migrate it. With ``wait=False`` it runs in
    the background (beside Airflow's own migration): call ``finish_init(proc)`` before starting Airflow.
    A new store comes from a copy when ``MLOPS_AIRFLOW_DB_CACHE`` holds one for this MLflow version (see
    ``migrate_db``): then there is no process (None)."""
    db_file = home / "mlflow.db"
    template = _cached_db("mlflow") if not db_file.exists() else None  # an existing store is only opened
    if template is not None and template.exists():
        shutil.copyfile(template, db_file)
        return None
    code = f"import mlflow; mlflow.MlflowClient({tracking_uri(home)!r}).search_experiments()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.mlops_template = (db_file, template)  # type: ignore[attr-defined]  # kept by finish_init
    if wait:
        finish_init(proc)
    return proc


def finish_init(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"creating the MLflow store failed:\n{err.decode(errors='replace')[-3000:]}")
    _keep(*proc.mlops_template)  # type: ignore[attr-defined]


DISTRIBUTIONS = {"airflow": "apache-airflow", "mlflow": "mlflow"}  # whose version names a cached DB


def _cached_db(kind: str) -> Path | None:
    """Where the cache folder ``MLOPS_AIRFLOW_DB_CACHE`` (if set) keeps a freshly made ``kind`` ("airflow",
    "mlflow") SQLite DB of the installed version."""
    cache = os.environ.get("MLOPS_AIRFLOW_DB_CACHE")
    return Path(cache) / f"{kind}-{metadata.version(DISTRIBUTIONS[kind])}.db" if cache else None


def _keep(db_file: Path, template: Path | None) -> None:
    """Copy a freshly made ``db_file`` to its cache ``template``: written whole, then renamed (two processes
    may make it at once)."""
    if template is None:
        return
    template.parent.mkdir(parents=True, exist_ok=True)
    partial = template.with_suffix(f".{os.getpid()}.partial")
    shutil.copyfile(db_file, partial)
    os.replace(partial, template)


def migrate_db(db_file: Path, migrate: Callable[[], None]) -> None:
    """Make the SQLite metadata DB ``db_file`` with ``migrate`` (Airflow's ``db migrate`` and the pack's pool).

    With ``MLOPS_AIRFLOW_DB_CACHE`` set to a folder (the test suite sets it: it makes a dozen homes), the
    first DB made there is kept per Airflow version and later homes start from a copy: the two commands
    cost ~20 s of process start-up and schema work a home, the copy nothing. The copy is the schema and
    rows Airflow made (pool included); nothing in it names the home. The MLflow store (``init_mlflow``)
    is kept there the same way: its schema and the default experiment, which points at no home (the pack's
    experiments name their artifact root when they are created)."""
    template = _cached_db("airflow")
    if template is not None and template.exists():
        shutil.copyfile(template, db_file)
        return
    migrate()
    _keep(db_file, template)


class BusyRetryTransport(httpx.HTTPTransport):
    """Asks again when the api-server answers 503: on SQLite under load it rolls a request back with
    "Service Unavailable" when the database stays locked (seen creating a backfill), which leaves nothing
    behind, so asking again is safe. Up to ``attempts`` times, waiting longer each time."""

    def __init__(self, attempts: int = 8, **kwargs: Any):
        super().__init__(retries=3, **kwargs)  # connect errors too: an api-server still starting
        self.attempts = attempts

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(self.attempts):
            response = super().handle_request(request)
            if response.status_code != 503 or attempt == self.attempts - 1:
                return response
            response.close()
            time.sleep(min(2 ** attempt, 15))
        raise AssertionError("unreachable")


class Airflow:
    """The Airflow processes of one home and a small REST client for them."""

    def __init__(self, home: Path, api_port: int, pipelines: list[str], *, triggerer: bool = False,
                 extra_env: dict[str, str] | None = None):
        self.home, self.api_port, self.pipelines = home, api_port, list(pipelines)
        self.dags = dag_ids(self.pipelines)
        self.triggerer = triggerer
        self.env = caller_env()
        self.env.update(AIRFLOW_HOME=str(home), PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
                        GIT_PYTHON_REFRESH="quiet", **(extra_env or {}))
        self.procs: list[subprocess.Popen] = []
        self.home_login: HomeLogin | None = None  # set by whoever wrote the config (write_config returns it)
        self.url = f"http://127.0.0.1:{api_port}"
        self.http = httpx.Client(base_url=self.url, timeout=60, transport=BusyRetryTransport())

    def run(self, *args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                                text=True)
        if result.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")

    def migrate(self) -> None:
        """Migrate the home's metadata DB and add the registry pool (from a copy: see ``migrate_db``)."""
        def migrate() -> None:
            self.run("db", "migrate")
            self.run("pools", "set", "mlops_registry", "1", "MLflow registry writes: one promotion at a time")

        migrate_db(self.home / "airflow.db", migrate)

    def components(self) -> list[tuple[str, list[str]]]:
        """(name, ``airflow`` arguments) of each process :meth:`start` starts. No log servers: Airflow's
        listens on every interface, and this home's api-server reads the task logs from its own files."""
        components = [("api-server", ["api-server", "-p", str(self.api_port)]),
                      ("scheduler", ["scheduler", "--skip-serve-logs"]), ("dag-processor", ["dag-processor"])]
        if self.triggerer:
            components.append(("triggerer", ["triggerer", "--skip-serve-logs"]))
        return components

    def start(self) -> None:
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True)
        for name, args in self.components():
            out = (logs / f"{name}.out").open("w")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "airflow", *args], env=self.env,
                                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        """SIGTERM to each process group; SIGKILL to what still runs 20 s later. The api-server is done once it
        no longer listens and a moment has passed for its shutdown hooks: what is left is the interpreter's exit
        (its garbage collection took ~15 s on a loaded machine), which writes nothing, so it gets SIGKILL then."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for (name, _), proc in zip(self.components(), self.procs, strict=False):
            closed_at = None  # when the api-server stopped listening
            while proc.poll() is None and time.monotonic() < deadline:
                if name == "api-server" and closed_at is None and not self.listening():
                    closed_at = time.monotonic()
                if closed_at is not None and time.monotonic() - closed_at > 3:
                    break
                time.sleep(0.2)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def listening(self) -> bool:
        """Does something accept connections on the api-server's port?"""
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex(("127.0.0.1", self.api_port)) == 0

    def wait_ready(self, timeout: float = 240) -> None:
        """Wait until the api-server answers and lists every DAG of the pipelines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.log_in()
                found = {d["dag_id"] for d in self.get_all("/api/v2/dags", "dags")}
                if set(self.dags) <= found:
                    return
            except LoginError:
                raise  # the home's users cannot drive it (core/access.py acting_user): waiting will not help
            except (httpx.HTTPError, KeyError, ValueError, OSError):
                pass
            self.check_alive()
            time.sleep(2)
        errors = self.import_errors()
        raise TimeoutError(f"Airflow did not serve the DAGs {self.dags} within {timeout}s; see {self.home / 'logs'}"
                           + (f"\nDAG import errors:\n{errors}" if errors else ""))

    def log_in(self) -> None:
        """Send this client's requests with a token of the user the home's commands act as (its airflow.cfg
        and passwords file, :func:`acting_credentials`), or of Airflow's anonymous admin in local mode."""
        credentials = acting_credentials(self.home)
        if credentials is None:
            answer = self.http.get("/auth/token")
        else:
            answer = self.http.post("/auth/token", json={"username": credentials[0], "password": credentials[1]})
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"an Airflow process exited early: {proc.args}; see {self.home / 'logs'}")

    def import_errors(self) -> str:
        try:
            errors = self.get("/api/v2/importErrors")["import_errors"]
        except (httpx.HTTPError, KeyError, ValueError):
            return ""
        return "\n".join(f"{e['filename']}:\n{e['stack_trace'][-1500:]}" for e in errors)

    def get(self, path: str, **params: Any) -> dict:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def get_all(self, path: str, key: str, **params: Any) -> list[dict]:
        """Every entry of a paged list endpoint (``key``: its list, such as ``dags``), page by page.

        The api-server caps ``limit`` at ``[api] maximum_page_limit`` (100 by default) whatever is asked:
        one request with ``limit=1000`` saw the first 100 of 250 DAGs, so a home of more than 20 specs
        never looked ready (bench/many.py found it)."""
        entries: list[dict] = []
        while True:
            page = self.get(path, **params, limit=PAGE, offset=len(entries))
            entries += page[key]
            if not page[key] or len(entries) >= page.get("total_entries", 0):
                return entries

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        response = self.http.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="run_after", limit=100)["dag_runs"]

    def busy(self) -> bool:
        """A run of the pipelines is queued or running, or an unpaused DAG of theirs has asset events
        queued for its next run (the scheduler creates that run on a later loop: a loaded machine can make
        that gap long, so it is asked for, not waited out).

        Asked in few requests (one for the DAGs, one for every unfinished run, one per unpaused DAG for its
        queued events): ``wait_quiet`` asks every 2 s, and each request costs the api-server CPU that
        the tasks it waits for need."""
        paused = self.served_dags()
        unfinished = self.get_all("/api/v2/dags/~/dagRuns", "dag_runs", state=["queued", "running"])
        if any(r["dag_id"] in paused and r["state"] not in TERMINAL for r in unfinished):
            return True
        return any(not is_paused and self.queued_events(dag) for dag, is_paused in paused.items())

    def served_dags(self, pipelines: list[str] | None = None) -> dict[str, bool]:
        """Every DAG Airflow serves for the pipelines (the four stages, plus ``__rollback``, ``__labels``,
        ``__outcomes`` or ``__champion_watch`` where a spec has them) -> whether it is paused; the four
        stages, unpaused, while Airflow serves none of them yet."""
        prefixes = tuple(f"{name}__" for name in (pipelines or self.pipelines))
        served = {d["dag_id"]: d["is_paused"] for d in self.get_all("/api/v2/dags", "dags")
                  if d["dag_id"].startswith(prefixes)}
        return dict(sorted(served.items())) or {d: False for d in self.dags if d.startswith(prefixes)}

    def pipeline_dags(self, pipelines: list[str] | None = None) -> list[str]:
        """The ids of :meth:`served_dags`, sorted."""
        return list(self.served_dags(pipelines))

    def queued_events(self, dag_id: str) -> list[dict]:
        response = self.http.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")
        if response.status_code == 404:  # nothing queued
            return []
        response.raise_for_status()
        return response.json()["queued_events"]

    def wait_quiet(self, timeout: float, settle: float = 6) -> None:
        """Wait until no run of the pipelines is queued or running and no asset event waits for one,
        for ``settle`` s in a row."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                busy = self.busy()
            except httpx.TimeoutException:  # a loaded api-server answers late: it is not quiet yet
                busy = True
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            self.check_alive()
            time.sleep(2)
        raise TimeoutError(f"the loop was still busy after {timeout}s; see {self.home / 'logs'}")

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return [t["task_id"] for t in tis if t["state"] in ("failed", "upstream_failed")]


def champion(home: Path, pipeline: str) -> str | None:
    """The champion version of ``pipeline`` in the home's registry, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri(home), registry_uri=tracking_uri(home))
    try:
        return str(client.get_model_version_by_alias(pipeline, "champion").version)
    except MlflowException:
        return None


def collect_summary(airflow: Airflow, home: Path, pipeline: str) -> dict:
    """What the loop did for ``pipeline``: runs, champion history, versions, aliases, drift, partitions."""
    from mlflow import MlflowClient

    runs = []
    for dag_id in airflow.pipeline_dags([pipeline]):
        for r in airflow.runs(dag_id):
            entry = {"dag_id": dag_id, "run_id": r["dag_run_id"], "run_type": r["run_type"], "state": r["state"]}
            if r["run_type"] == "asset_triggered":
                events = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{r['dag_run_id']}/upstreamAssetEvents")
                entry["triggered_by"] = sorted({e["name"] or e["uri"] for e in events["asset_events"]})
            if dag_id.endswith("__train"):
                tis = airflow.get(f"/api/v2/dags/{dag_id}/dagRuns/{r['dag_run_id']}/taskInstances")["task_instances"]
                entry["train_state"] = next((t["state"] for t in tis if t["task_id"] == "train"), None)
            runs.append(entry)
    data = home / "mlops-data" / pipeline
    uri = tracking_uri(home)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # explicit: never a registry URI set globally
    versions = sorted(client.search_model_versions(f"name='{pipeline}'"), key=lambda v: int(v.version))
    aliases = {}
    for alias in ("champion", "previous", "challenger"):
        try:
            aliases[alias] = str(client.get_model_version_by_alias(pipeline, alias).version)
        except Exception:  # noqa: BLE001 - a missing alias is an answer here
            pass
    promotions = [json.loads(p.read_text()) for p in sorted((data / "promotions").glob("*.json"))]
    monitors = []  # one drift report per prediction partition (docs/storage.md), oldest data first
    for summary_file in sorted((data / "reports" / "drift").glob("*/summary.json")):
        s = json.loads(summary_file.read_text())
        monitors.append({"partition": s["partition"], "share": s["share"], "drift": s["drift"],
                         "drifted_columns": s["drifted_columns"], "model_version": s["model_version"],
                         "report": s["report_uri"]})
    partitions = {area: sorted(p.parent.name for p in (data / area).glob("*/manifest.json"))
                  for area in ("raw", "validated", "predictions")}
    partitions["training"] = sorted(p.parent.parent.name for p in (data / "training").glob("*/train/manifest.json"))
    return {
        "pipeline": pipeline,
        "runs": runs,
        "champion_history": [{"version": p["version"], "decision": p["decision"], "reason": p["reason"],
                              "champion_before": p["champion_before"], "champion_after": p["champion_after"],
                              "run_id": p["run_id"]} for p in promotions],
        "model_versions": [{"version": str(v.version), "decision": v.tags.get("decision"),
                            "reason": v.tags.get("reason"), "data_partitions": v.tags.get("data_partitions"),
                            "metrics": _holdout_metrics(v.tags)}
                           for v in versions],
        "aliases": aliases,
        "monitor_runs": monitors,
        "partitions": partitions,
        "locations": {"validated": str(data / "validated"), "predictions": str(data / "predictions"),
                      "drift_reports": str(data / "reports" / "drift"), "quarantine": str(data / "quarantine"),
                      "promotion_log": str(data / "promotions"), "mlflow": uri},
    }


def _holdout_metrics(tags: dict[str, str]) -> dict[str, float]:
    """The overall holdout metrics a version is tagged with (``holdout_<metric>``; per-class ones left out)."""
    from mlops_pack.core.metrics import METRICS

    return {name: float(tags[f"holdout_{name}"]) for name in METRICS if f"holdout_{name}" in tags}


def print_summary(summary: dict) -> None:
    print(f"\n=== {summary.get('pipeline', '')}: DAG runs ===")
    for r in summary["runs"]:
        by = f"  <- {', '.join(r['triggered_by'])}" if r.get("triggered_by") else ""
        train = f" (train {r['train_state']})" if r.get("train_state") not in (None, "success") else ""
        print(f"  {r['dag_id']:<24} {r['run_type']:<16} {r['state']:<8}{train} {r['run_id']}{by}")
    print("\n=== Champion history ===")
    for p in summary["champion_history"]:
        print(f"  v{p['version']:<3} {p['decision']:<9} champion {p['champion_before']} -> {p['champion_after']}: "
              f"{p['reason']}")
    print(f"  aliases now: {summary['aliases']}")
    print("\n=== Drift per report (prediction partition) ===")
    for m in summary["monitor_runs"]:
        print(f"  {m['partition']:<24} share={m['share']:.2f} drift={m['drift']} columns={m['drifted_columns']}")
    print("\n=== Partitions (named by their data) ===")
    for area, keys in summary["partitions"].items():
        print(f"  {area:<12} {', '.join(keys)}")
    print("\n=== Where things are ===")
    for k, v in summary["locations"].items():
        print(f"  {k:<14} {v}")


def save_runner_state(home: Path, **state: Any) -> None:
    (home / RUNNER_FILE).write_text(json.dumps(state, indent=2))


def load_runner_state(home: Path) -> dict:
    path = home / RUNNER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{home} is not an mlops-pack home (no {RUNNER_FILE}): run `mlops-pack run` first")
    return json.loads(path.read_text())
