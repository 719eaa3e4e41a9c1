"""Build the images and run docker-compose.yml with docker-compose.local.yml, health-gated, on any engine.

    python deploy/containers/compose.py image                     # make image
    python deploy/containers/compose.py [--project P] up          # make compose-up
    python deploy/containers/compose.py [--project P] down        # make compose-down

With a Docker engine this is ``docker compose ... up -d --wait``. Without one (this machine, many
air-gapped hosts) it is Debian's podman with podman-compose 1.0, which neither runs health checks on
its own (they are timers of systemd) nor honours ``depends_on`` conditions: so the services are started
in the order the conditions say, each stage once the previous one is healthy (``podman healthcheck
run``) or, for ``airflow-init``, exited 0. Images are built on the local Debian base
(deploy/containers/base-image.sh) and tagged by the digest of what they are built from, so an
unchanged tree reuses them instead of rebuilding. Standard library only: it runs before any venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "deploy" / "containers"
FILES = (REPO / "docker-compose.yml", REPO / "docker-compose.local.yml")
BASE_IMAGE = "localhost/mlops-base:bookworm-py311"
AIRFLOW_IMAGE = "localhost/airflow-mlops-pack:0.1.0"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Each stage starts once every service of the previous one is healthy (airflow-init: exited 0), as the
# compose file's depends_on conditions say.
# (started together, then awaited): the workers need a healthy api-server only.
SERVERS = ("mlflow", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
WORKERS = ("airflow-worker", "airflow-worker-training")
STAGES = (
    (("postgres", "redis", "s3", "demo-site"), ("postgres", "redis", "s3", "demo-site")),
    (("airflow-init",), ("airflow-init",)),
    (SERVERS, ("airflow-apiserver",)),
    (WORKERS, (*SERVERS, *WORKERS)),
)
ONE_SHOT = {"airflow-init"}


def _ignored() -> list[str]:
    """.dockerignore's patterns: what the build context leaves out is not part of the image's inputs."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _files(*paths: str, context: bool = False) -> list[Path]:
    """The files under ``paths``; ``context``: those of the repository's build context (.dockerignore)."""
    ignored, out = _ignored() if context else [], []
    for rel in paths:
        path = REPO / rel
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in found:
            name = str(p.relative_to(REPO))
            if "__pycache__" in p.parts or p.name.endswith(".pyc"):
                continue
            if rel != name and any(name == i or name.startswith(i + "/") for i in ignored):
                continue
            out.append(p)
    return out


def digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# name -> (tag, Dockerfile, build context, the files the image is made of)
def images(airflow_tag: str = AIRFLOW_IMAGE) -> dict[str, tuple[str, Path, Path, list[Path]]]:
    return {
        "airflow": (airflow_tag, REPO / "Dockerfile", REPO,
                    _files("Dockerfile", ".dockerignore", "requirements-runtime.lock", "requirements-build.lock",
                           "pyproject.toml", "README.md", "plugins/mlops_pack", "dags", "include", "deploy", context=True)),
        "postgres": ("localhost/mlops-postgres:15", HERE / "postgres" / "Dockerfile", HERE / "postgres",
                     _files("deploy/containers/postgres")),
        "redis": ("localhost/mlops-redis:7", HERE / "redis" / "Dockerfile", HERE / "redis",
                  _files("deploy/containers/redis")),
        "s3": ("localhost/mlops-s3:5.2.5", HERE / "s3" / "Dockerfile", REPO,
               _files("deploy/containers/s3", "requirements.lock")),
    }


def engine() -> str:
    """``docker`` where a Docker engine answers, else ``podman`` (installed by host-setup.sh when missing)."""
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    if not (shutil.which("podman") and shutil.which("podman-compose")):
        subprocess.run(["bash", str(HERE / "host-setup.sh")], check=True)
    return "podman"


def run(*argv: str, env: dict | None = None, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, env=env, text=True, capture_output=quiet)
    if check and result.returncode != 0:
        detail = (result.stderr or "")[-3000:] if quiet else ""
        raise SystemExit(f"`{' '.join(argv)}` failed (exit {result.returncode}){': ' + detail if detail else ''}")
    return result


def exists(tool: str, image: str) -> bool:
    return subprocess.run([tool, "image", "inspect", image], capture_output=True).returncode == 0


def build_images(airflow_tag: str = AIRFLOW_IMAGE) -> dict[str, float]:
    """Build what is missing; an image whose inputs did not change is reused (tagged by their digest)."""
    tool = engine()
    if tool == "podman" and not exists(tool, BASE_IMAGE):
        run("bash", str(HERE / "base-image.sh"), BASE_IMAGE)
    seconds = {}
    for name, (tag, dockerfile, context, inputs) in images(airflow_tag).items():
        keyed = f"{tag.rsplit(':', 1)[0]}:build-{digest(inputs)}"
        started = time.monotonic()
        if exists(tool, keyed):
            run(tool, "tag", keyed, tag)
            print(f"[compose] {name}: {keyed} (unchanged inputs, reused)")
        else:
            argv = [tool, "build", "-f", str(dockerfile), "-t", tag, "-t", keyed, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
            if tool == "podman":
                # Build steps fetch packages (Debian, PyPI) on the host's network with the host's CA bundle
                # (a site proxy's CA included); nothing is fetched when the containers run.
                argv += ["--network=host"]
                if CA_BUNDLE.exists():
                    argv += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
            run(*argv, str(context))
        seconds[name] = round(time.monotonic() - started, 1)
    return seconds


class Stack:
    """One compose project: its environment (image, ports, logs folder) and its containers."""

    def __init__(self, project: str, env: dict[str, str] | None = None, extra_files: tuple[Path, ...] = ()):
        self.project, self.tool, self.files = project, engine(), (*FILES, *extra_files)
        self.env = {**os.environ, "AIRFLOW_BASE_IMAGE": BASE_IMAGE, "AIRFLOW_IMAGE_NAME": AIRFLOW_IMAGE, **(env or {})}
        self.logs = Path(self.env.get("AIRFLOW_PROJ_DIR", REPO)) / "logs"

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        files = [a for f in self.files for a in ("-f", str(f))]
        head = ["docker", "compose"] if self.tool == "docker" else ["podman-compose"]
        return run(*head, "-p", self.project, *files, *args, env=self.env, check=check, quiet=True)

    def container(self, service: str) -> str:
        out = run(self.tool, "ps", "-a", "--filter", f"label=com.docker.compose.project={self.project}",
                  "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}",
                  quiet=True).stdout.split()
        if not out:
            raise SystemExit(f"[compose] no container for service {service} in project {self.project}")
        return out[0]

    def state(self, service: str) -> tuple[str, int]:
        out = run(self.tool, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", self.container(service),
                  quiet=True).stdout.split()
        return out[0], int(out[1])

    def healthy(self, service: str) -> bool:
        status, code = self.state(service)
        if service in ONE_SHOT:
            if status == "exited" and code != 0:
                raise SystemExit(f"[compose] {service} failed (exit {code}):\n{self.logs_of(service)}")
            return status == "exited"
        if status not in ("running", "created", "configured", "initialized"):
            raise SystemExit(f"[compose] {service} is {status} (exit {code}):\n{self.logs_of(service)}")
        if self.tool == "docker":
            return run("docker", "inspect", "-f", "{{.State.Health.Status}}", self.container(service),
                       quiet=True, check=False).stdout.strip() == "healthy"
        return run("podman", "healthcheck", "run", self.container(service), check=False, quiet=True).returncode == 0

    def logs_of(self, service: str, tail: int = 60) -> str:
        result = run(self.tool, "logs", "--tail", str(tail), self.container(service), check=False, quiet=True)
        return (result.stdout or "") + (result.stderr or "")

    def wait(self, services: tuple[str, ...], deadline: float) -> None:
        # One check at a time: several start an Airflow or Celery CLI each, and run side by side on a
        # loaded host they all outlive their timeout (seen at load average 27).
        pending = list(services)
        while pending:
            pending = [s for s in pending if not self.healthy(s)]
            if pending and time.monotonic() > deadline:
                raise SystemExit(f"[compose] not healthy before the deadline: {pending}")
            if pending:
                time.sleep(3)

    def up(self, timeout: float = 1800) -> dict[str, float]:
        """Start the stages in order; returns the seconds each stage took."""
        self.logs.mkdir(parents=True, exist_ok=True)
        deadline, seconds = time.monotonic() + timeout, {}
        if self.tool == "docker":
            started = time.monotonic()
            self.compose("up", "-d", "--wait")
            return {"up": round(time.monotonic() - started, 1)}
        # podman-compose 1.0 starts every dependency again on `up SERVICE` (airflow-init would run once per
        # stage): it only creates the containers here, and each stage is started with `podman start`.
        self.compose("up", "--no-start")
        for stage, awaited in STAGES:
            started = time.monotonic()
            run("podman", "start", *(self.container(s) for s in stage), quiet=True)
            self.wait(awaited, deadline)
            seconds[",".join(stage)] = round(time.monotonic() - started, 1)
            print(f"[compose] started {' '.join(stage)}; healthy: {' '.join(awaited)} "
                  f"({seconds[','.join(stage)]} s)", flush=True)
        return seconds

    def admin_password(self) -> str:
        """The password the api-server generated for ``admin`` (SimpleAuthManager)."""
        out = run(self.tool, "exec", self.container("airflow-apiserver"), "cat",
                  "/opt/airflow/simple_auth_manager_passwords.json.generated", quiet=True).stdout
        return json.loads(out)["admin"]

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {
            "containers": run(self.tool, "ps", "-a", "--filter", label, "--format", "{{.Names}}", quiet=True).stdout,
            "volumes": run(self.tool, "volume", "ls", "--format", "{{.Name}}", quiet=True).stdout,
            "networks": run(self.tool, "network", "ls", "--format", "{{.Name}}", quiet=True).stdout,
            "pods": run(self.tool, "pod", "ls", "--format", "{{.Name}}", quiet=True, check=False).stdout
            if self.tool == "podman" else "",
        }
        prefixes = (f"{self.project}_", f"{self.project}-", f"pod_{self.project}")
        return {kind: [n for n in text.split() if kind == "containers" or n.startswith(prefixes)]
                for kind, text in found.items()}

    def down(self) -> dict[str, list[str]]:
        """Stop and remove every container, volume, network (and pod) of the project; returns what is left."""
        self.compose("down", "-v", check=False)
        left = self.leftovers()
        for name in left["containers"]:
            run(self.tool, "rm", "-f", "-v", "-t", "0", name, check=False, quiet=True)
        for name in left["pods"]:
            run(self.tool, "pod", "rm", "-f", name, check=False, quiet=True)
        for name in left["volumes"]:
            run(self.tool, "volume", "rm", "-f", name, check=False, quiet=True)
        for name in left["networks"]:
            run(self.tool, "network", "rm", "-f", name, check=False, quiet=True)
        return {kind: names for kind, names in self.leftovers().items() if names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["image", "up", "down"])
    parser.add_argument("--project", default="mlops-pack", help="compose project name (default mlops-pack)")
    args = parser.parse_args()
    if args.action == "image":
        started = time.monotonic()
        seconds = build_images()
        print(f"[compose] images ready in {time.monotonic() - started:.0f} s: {seconds}")
        return
    stack = Stack(args.project)
    if args.action == "down":
        left = stack.down()
        if left:
            sys.exit(f"[compose] left behind: {left}")
        print(f"[compose] project {args.project}: no container, volume or network left")
        return
    started = time.monotonic()
    try:
        stack.up()
    except BaseException:
        print("[compose] start failed: `make compose-down` removes what started", file=sys.stderr)
        raise
    api = stack.env.get("AIRFLOW_API_PORT", "8080")
    print(f"[compose] up in {time.monotonic() - started:.0f} s\n"
          f"  Airflow  http://localhost:{api} (admin / {stack.admin_password()})\n"
          f"  MLflow   http://localhost:{stack.env.get('MLOPS_MLFLOW_PORT', '5000')}\n"
          f"  logs     {stack.logs} (components); task logs in s3://mlops/logs\n"
          f"  stop:    make compose-down")


if __name__ == "__main__":
    main()
