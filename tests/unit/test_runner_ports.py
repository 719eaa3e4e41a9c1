"""Every server of a `mlops-pack run` / demo home listens on 127.0.0.1 on ports the user can set
(``--port-range``, ``--api-port`` or the same ``AIRFLOW__*`` settings), and the caller's ``AIRFLOW__*``
variables reach the processes, except those naming where a home is."""

from __future__ import annotations

import configparser
import socket
import subprocess
import sys

import pytest
from mlops_pack.cli import runner
from mlops_pack.core.errors import MlopsError


def test_port_range_is_parsed_and_checked():
    assert runner.parse_port_range("28000-28009") == range(28000, 28010)
    assert runner.parse_port_range(None) is None
    for bad, says in (("28000", "START-END"), ("a-b", "START-END"), ("29000-28000", "START <= END"),
                      ("80-90", "1024")):
        with pytest.raises(MlopsError, match=says):
            runner.parse_port_range(bad)


def test_ports_come_from_the_range_once_each_skipping_busy_ones():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        busy.listen()
        ports = runner.Ports(range(port, port + 3))
        got = [ports.take("a"), ports.take("b")]
        assert got == [port + 1, port + 2]  # not the busy one, never twice
        with pytest.raises(runner.PortRangeError, match="no free port left for the MLflow UI"):
            ports.take("the MLflow UI")
    assert ports.take("chosen", 5000) == 5000  # a port the user named is theirs


def test_the_config_puts_every_server_on_loopback_on_the_ports_given(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__PORT", raising=False)
    span = runner.parse_port_range("47100-47199")
    ports = runner.Ports(span)
    api = runner.api_port(ports)
    runner.write_config(tmp_path, api, tmp_path / "specs", dags_folder=tmp_path / "dags", ports=ports,
                        mlflow_ui_url="http://127.0.0.1:47150")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(tmp_path / "airflow.cfg")
    assert cfg["api"]["host"] == "127.0.0.1" and int(cfg["api"]["port"]) == api and api in span
    assert cfg["api"]["base_url"] == f"http://127.0.0.1:{api}"
    assert cfg["core"]["execution_api_server_url"] == f"http://127.0.0.1:{api}/execution/"
    log_ports = {int(cfg["logging"]["worker_log_server_port"]), int(cfg["logging"]["trigger_log_server_port"])}
    assert len(log_ports | {api}) == 3 and log_ports <= set(span)
    assert cfg["mlops"]["mlflow_ui_url"] == "http://127.0.0.1:47150"
    # no process serves logs on every interface (Airflow's log server cannot bind to loopback only)
    commands = dict(runner.Airflow(tmp_path, api, ["shop"], triggerer=True).components())
    assert "--skip-serve-logs" in commands["scheduler"] and "--skip-serve-logs" in commands["triggerer"]


def test_the_callers_airflow_settings_reach_the_processes_and_win(tmp_path, monkeypatch):
    """Airflow, as the home's processes start it, reads the home's airflow.cfg and the caller's
    AIRFLOW__* variables over it; a variable naming another home (a test process's) is not passed."""
    monkeypatch.setenv("AIRFLOW__API__PORT", "47201")
    monkeypatch.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "47202")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/elsewhere/dags")  # the test process's own home
    ports = runner.Ports()
    api = runner.api_port(ports)
    assert api == 47201  # AIRFLOW__API__PORT chooses the api-server's port
    runner.write_config(tmp_path, api, tmp_path / "specs", dags_folder=tmp_path / "dags", ports=ports)
    env = runner.Airflow(tmp_path, api, ["shop"]).env
    assert "AIRFLOW__CORE__DAGS_FOLDER" not in env and env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "47202"
    code = ("from airflow.configuration import conf; print(conf.get('api', 'host'), conf.get('api', 'port'), "
            "conf.get('logging', 'worker_log_server_port'), conf.get('core', 'dags_folder'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-4:] == ["127.0.0.1", "47201", "47202", str(tmp_path / "dags")]
