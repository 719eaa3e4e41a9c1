# The two commands a user needs: `make demo` and `make test`. Both install everything from the lock.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.9.30
# A Python to run the container scripts with (they need only the standard library).
PYTHON_ANY := $(shell command -v $(PYTHON) >/dev/null 2>&1 && echo $(PYTHON) || echo python3)

.PHONY: install demo test test-fast lint ui vendor-datadocs lock bench bench-many clean stack stack-down image compose-up \
	compose-down test-containers

$(PY):
	$(shell command -v $(PYTHON) >/dev/null 2>&1 && echo $(PYTHON) || echo python3) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"

install: $(PY)
	$(VENV)/bin/uv pip sync --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install --python $(PY) --no-deps -e .
	rm -rf plugins/*.egg-info  # a setuptools build left one: a second airflow-mlops-pack on sys.path

# Closed retrain loop on the embedded default (SQLite, LocalExecutor, local MLflow, demo site).
# Login (docs/ui.md, "Logging in"): you, as admin, with a password printed once (and kept in
# demo_home/simple_auth_manager_passwords.json.generated); USERS="ana:admin bob:viewer" names the users,
# NO_LOGIN=1 is local mode (no login; decisions are recorded as "Anonymous"). `make ui` takes the same two.
LOGIN_ARGS = $(foreach user,$(USERS),--user $(user)) $(if $(NO_LOGIN),--no-login)
demo: install
	$(PY) include/demo_site/loop.py --home demo_home $(LOGIN_ARGS)

# Two workers: most of the suite waits on real Airflow/MLflow processes (tests/conftest.py says how
# the work is split into units). TEST_WORKERS=0 runs it in one process. Waits give up only at
# one generous deadline (MLOPS_TEST_DEADLINE seconds, tests/support/waiting.py), never on a budget.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -p no:cacheprovider -ra -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder
test: install lint
	$(PYTEST)

# The edit loop: lint and the tests that start no Airflow, server or browser (about a minute).
test-fast: install lint
	$(PYTEST) -m "not slow and not e2e and not integration"

lint: $(PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff check --select AIR dags plugins tests

# The demo's Airflow home in the web UI (http://127.0.0.1:28080, log in as the demo said), with the MLflow
# UI beside it (http://127.0.0.1:5000, where the "MLflow run/model version" links redirect) for as long
# as Airflow runs; every server on 127.0.0.1. `make ui PORT_RANGE=29000-29009` moves them all to free
# ports of that range. The model health page: Browse > Model health (docs/ui.md).
MLFLOW_UI_PORT ?= 5000
ui:
	$(VENV)/bin/mlops-pack ui --home $(CURDIR)/demo_home \
		$(if $(PORT_RANGE),--port-range $(PORT_RANGE),--mlflow-port $(MLFLOW_UI_PORT)) $(LOGIN_ARGS)

# Every extra (celery, postgres, amazon, dev) is locked: the demo, tests and native stack use them all.
vendor-datadocs: $(PY)  # refresh the Data Docs assets the plugin serves (npm ci from their lock)
	$(PY) deploy/vendor_datadocs.py

# The image installs requirements-runtime.lock: the same versions without the dev extra (resolved with
# requirements.lock as constraints; tests/unit/test_locks.py checks they agree), and builds the pack with
# the backend pinned in requirements-build.lock.
lock: $(PY)
	$(VENV)/bin/uv pip compile pyproject.toml --all-extras --python-version 3.11 -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra celery --extra postgres --extra amazon --python-version 3.11 \
		-c requirements.lock -o requirements-runtime.lock
	echo "hatchling>=1.27" | $(VENV)/bin/uv pip compile - --python-version 3.11 -o requirements-build.lock

bench: install
	$(PY) bench/dag_parse.py

# Many pipelines on one Airflow (bench/many.py): CI runs it at N=50 as a smoke test, ratios printed, not asserted.
MANY_N ?= 1 50
bench-many: install
	$(PY) bench/many.py $(foreach n,$(MANY_N),--n $(n)) --settle 20 --probes 2

clean:
	rm -rf demo_home build dist *.egg-info plugins/*.egg-info

# The production shape as processes on this machine (docs/deploy.md): Airflow on the local PostgreSQL
# and Redis with CeleryExecutor and two workers, MLflow server with S3 artifacts, S3 on moto (loopback).
stack: install
	$(PY) deploy/stack.py up --home stack_home

stack-down:
	$(PY) deploy/stack.py down --home stack_home

# Containers (docs/deploy.md, "Containers"): the images, then docker-compose.yml with
# docker-compose.local.yml (Postgres, Redis and S3 built on the local base) under `docker compose` or,
# without a Docker engine, Debian's podman + podman-compose (installed here by deploy/containers/host-setup.sh).
# BASE_IMAGE=apache/airflow:3.3.2-python3.11 builds on the official image where it can be pulled.
COMPOSE_PROJECT ?= mlops-pack
image:
	$(PYTHON_ANY) deploy/containers/compose.py image

compose-up: image
	$(PYTHON_ANY) deploy/containers/compose.py --project $(COMPOSE_PROJECT) up

compose-down:
	$(PYTHON_ANY) deploy/containers/compose.py --project $(COMPOSE_PROJECT) down

# Builds (or reuses) the images, runs the compose stack to a first champion and kills a worker container
# during a train task (tests/stack/test_containers.py; root, podman: installed when missing).
test-containers: install
	MLOPS_CONTAINER_TESTS=1 $(PY) -m pytest -p no:cacheprovider -ra -s tests/stack/test_containers.py
