"""The login of an embedded home (`mlops-pack run/ui`, the demo): named users with generated passwords, kept
across commands, or local mode; what the home's own commands log in as."""

from __future__ import annotations

import configparser
import json
import stat

import pytest
from mlops_pack.cli import runner
from mlops_pack.core.access import LoginError


def config(home) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home / "airflow.cfg")
    return cfg


def write(home, **kwargs) -> runner.HomeLogin:
    return runner.write_config(home, 47300, home / "specs", dags_folder=home / "dags", **kwargs)


def test_a_new_home_has_a_login_for_the_person_at_the_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "maria")
    login = write(tmp_path)
    cfg = config(tmp_path)
    assert cfg["core"]["simple_auth_manager_all_admins"] == "False" and cfg["mlops"]["local_mode"] == "False"
    assert cfg["core"]["auth_manager"].endswith("simple_auth_manager.SimpleAuthManager")
    assert cfg["core"]["simple_auth_manager_users"] == "maria:ADMIN"
    passwords_file = tmp_path / runner.PASSWORDS_FILE
    assert cfg["core"]["simple_auth_manager_passwords_file"] == str(passwords_file)
    password = json.loads(passwords_file.read_text())["maria"]
    assert len(password) == 16 and stat.S_IMODE(passwords_file.stat().st_mode) == 0o600
    assert login.new_passwords == {"maria": password}
    said = "\n".join(login.describe("http://127.0.0.1:47300"))
    assert "as one of: maria:admin" in said and password in said  # shown the time it is made
    assert "maria:admin" in (tmp_path / "users.txt").read_text()
    assert runner.acting_credentials(tmp_path) == ("maria", password)

    again = write(tmp_path)  # `mlops-pack ui` later: the same users and passwords, none shown again
    assert again.new_passwords == {} and password not in "\n".join(again.describe("http://x"))
    assert json.loads(passwords_file.read_text()) == {"maria": password}


def test_named_users_replace_the_homes_users_and_keep_existing_passwords(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "maria")
    first = write(tmp_path).new_passwords["maria"]
    login = write(tmp_path, users=["ana:admin", "bob:viewer", "maria:op"])
    assert config(tmp_path)["core"]["simple_auth_manager_users"] == "ana:ADMIN,bob:VIEWER,maria:OP"
    assert set(login.new_passwords) == {"ana", "bob"}
    assert json.loads((tmp_path / runner.PASSWORDS_FILE).read_text())["maria"] == first
    assert runner.acting_credentials(tmp_path)[0] == "ana"
    write(tmp_path)  # no --user: the users of users.txt
    assert config(tmp_path)["core"]["simple_auth_manager_users"] == "ana:ADMIN,bob:VIEWER,maria:OP"
    (tmp_path / "users.txt").write_text("# edited by hand\nbob:viewer\n")
    write(tmp_path)
    with pytest.raises(LoginError, match="no user with role user or higher"):
        runner.acting_credentials(tmp_path)


def test_local_mode_has_no_login_and_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "maria")
    login = write(tmp_path, local_mode=True)
    cfg = config(tmp_path)
    assert cfg["core"]["simple_auth_manager_all_admins"] == "True" and cfg["mlops"]["local_mode"] == "True"
    assert runner.acting_credentials(tmp_path) is None
    assert "local mode" in login.describe("http://x")[0] and "'Anonymous'" in login.describe("http://x")[0]
    write(tmp_path)  # the next command without --no-login logs in again
    assert config(tmp_path)["core"]["simple_auth_manager_all_admins"] == "False"


def test_a_callers_login_settings_do_not_reach_the_homes_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch.setenv("AIRFLOW__MLOPS__LOCAL_MODE", "True")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "eve:admin")
    env = runner.Airflow(tmp_path, 47300, ["shop"]).env
    assert not {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "AIRFLOW__MLOPS__LOCAL_MODE",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"} & set(env)


def test_a_bad_user_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(LoginError, match="role 'boss'"):
        write(tmp_path, users=["ana:boss"])
