"""docker-compose.yml is valid Compose and runs what the native stack runs (deploy/stack.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.support.env import REPO

sys.path.insert(0, str(REPO / "deploy"))

import stack  # noqa: E402

COMPOSE_FILE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def docker_compose() -> str:
    """Debian's docker-compose (a real Compose parser; no Docker engine needed), installed when missing."""
    found = shutil.which("docker-compose")
    if found is None:
        result = subprocess.run(["apt-get", "install", "-y", "-q", "docker-compose"], capture_output=True, text=True,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("docker-compose")
        if found is None:
            pytest.fail(f"docker-compose is missing and apt-get could not install it:\n{result.stderr[-2000:]}")
    return found


def compose(docker_compose: str, *args: str) -> subprocess.CompletedProcess:
    # The file's own defaults, not whatever the caller's shell sets.
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_UID", "AIRFLOW_JWT_SECRET", "AIRFLOW_PROJ_DIR",
                                                            "AIRFLOW_IMAGE_NAME", "AIRFLOW_BASE_IMAGE")}
    return subprocess.run([docker_compose, "-f", str(COMPOSE_FILE), *args], capture_output=True, text=True, env=env,
                          cwd=REPO)


@pytest.fixture(scope="module")
def services(docker_compose) -> dict:
    result = compose(docker_compose, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def argv(service: dict) -> list[str]:
    """What the container runs: its entrypoint and command; the Airflow image's entrypoint runs
    ``airflow <command>`` unless the command is ``python`` or ``bash``."""
    command = service.get("command") or []
    command = command.split() if isinstance(command, str) else list(command)
    if service.get("entrypoint"):
        entrypoint = service["entrypoint"]
        return [*(entrypoint.split() if isinstance(entrypoint, str) else entrypoint), *command]
    return command if command[:1] in (["python"], ["bash"]) else ["airflow", *command]


def test_compose_config_is_valid(docker_compose):
    result = compose(docker_compose, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_runs_every_service_of_the_native_stack_with_the_same_command_and_environment(services):
    expected = stack.topology(stack.compose_config())
    assert set(expected) <= set(services), f"missing in docker-compose.yml: {set(expected) - set(services)}"
    for name, want in expected.items():
        got = services[name]
        assert argv(got) == want["command"], name
        env = {k: str(v) for k, v in (got.get("environment") or {}).items()}
        differing = {k: (env.get(k), v) for k, v in want["environment"].items() if env.get(k) != v}
        assert differing == {}, f"{name}: environment differs from deploy/stack.py (compose, native): {differing}"


def test_the_native_stack_renders_the_same_topology_for_this_machine(tmp_path):
    native = stack.topology(stack.StackConfig(home=tmp_path))
    containers = stack.topology(stack.compose_config())
    assert native.keys() == containers.keys()
    for name in native:
        assert native[name]["environment"].keys() == containers[name]["environment"].keys(), name
        assert len(native[name]["command"]) == len(containers[name]["command"]), name
    common = native["airflow-scheduler"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:28080/execution/"
    assert common["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"


def test_two_workers_with_distinct_host_names_and_both_serve_the_training_queue(services):
    for name, host in stack.WORKER_HOSTNAMES.items():
        assert services[name]["hostname"] == host
        assert services[name]["environment"]["DUMB_INIT_SETSID"] == "0"
    queues = {name: argv(services[name])[argv(services[name]).index("--queues") + 1].split(",")
              for name in stack.WORKER_HOSTNAMES}
    # Failover: a train retry runs on the other worker when the one that ran it dies.
    assert queues == {"airflow-worker": ["default", "training"], "airflow-worker-training": ["default", "training"]}
    assert services["airflow-worker"]["environment"]["AIRFLOW__MLOPS__TRAINING_QUEUE"] == "training"


def test_every_long_running_service_has_a_healthcheck_and_airflow_waits_for_init(services):
    for name, service in services.items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker", "airflow-worker-training", "mlflow"):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
    for name in ("airflow-worker", "airflow-worker-training"):
        assert services[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy", name


def test_airflow_runs_as_airflow_uid_from_an_image_built_from_the_dockerfile(services):
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-worker", "airflow-worker-training"):
        assert services[name]["user"] == "50000:0"  # ${AIRFLOW_UID:-50000}:0
        assert services[name]["build"]["context"] == str(REPO)
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in services[name]["environment"]
        assert services[name]["build"]["args"]["BASE_IMAGE"] == "apache/airflow:3.3.2-python3.11"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "FROM ${BASE_IMAGE}" in dockerfile
    assert "requirements-runtime.lock" in dockerfile


def test_airflow_init_runs_the_native_stacks_init_steps(services):
    script = "\n".join(services["airflow-init"]["command"])
    for step in ("airflow db migrate", "airflow pools set mlops_registry 1", "deploy/stack.py compose-init"):
        assert step in script
    assert services["airflow-init"]["user"] == "0:0"


def test_the_train_task_alone_goes_to_the_training_queue(monkeypatch, tmp_path):
    from mlops_pack.dag_factory import build_dags

    from tests.support.specs import write_spec

    spec = write_spec(tmp_path, "http://127.0.0.1:9")
    assert {t.queue for dag in build_dags(spec).values() for t in dag.tasks} == {"default"}
    monkeypatch.setenv("AIRFLOW__MLOPS__TRAINING_QUEUE", stack.TRAINING_QUEUE)
    queues = {(dag_id, t.task_id): t.queue for dag_id, dag in build_dags(spec).items() for t in dag.tasks}
    assert queues.pop(("listings__train", "train")) == "training"
    assert set(queues.values()) == {"default"}
