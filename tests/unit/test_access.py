"""Who may log in to an embedded home, who its commands act as, and who the plugin serves without a login."""

from __future__ import annotations

import pytest
from mlops_pack.core.access import (
    Login,
    LoginError,
    acting_user,
    anonymous_refusal,
    decider,
    default_login,
    is_loopback,
    parse_login,
    parse_logins,
    users_setting,
)


def test_a_user_is_name_and_one_of_the_simple_auth_managers_roles():
    assert parse_login("ana:admin") == Login("ana", "admin")
    assert parse_login(" bob.smith@example.com:VIEWER ") == Login("bob.smith@example.com", "viewer")
    for bad, says in (("ana", "NAME:ROLE"), ("ana:owner", "role 'owner'"), (":admin", "user name ''"),
                      ("a,b:admin", "letters, digits"), ("Anonymous:admin", "without a login")):
        with pytest.raises(LoginError, match=says):
            parse_login(bad)


def test_users_file_lines_skip_comments_and_refuse_a_name_given_twice():
    text = "# users\nana:admin  # the lead\n\nbob:viewer\n"
    assert parse_logins(text.splitlines()) == [Login("ana", "admin"), Login("bob", "viewer")]
    with pytest.raises(LoginError, match="'ana' is given twice"):
        parse_logins(["ana:admin", "ana:viewer"])
    assert users_setting(parse_logins(text.splitlines())) == "ana:ADMIN,bob:VIEWER"


def test_the_default_user_is_the_person_at_the_terminal_else_admin():
    assert default_login("maria") == Login("maria", "admin")
    assert default_login(None) == Login("admin", "admin")
    assert default_login("Anonymous") == Login("admin", "admin")  # Airflow's name for nobody
    assert default_login("user name with spaces") == Login("admin", "admin")


def test_commands_act_as_the_highest_role_and_need_one_that_may_trigger_runs():
    assert acting_user([Login("v", "viewer"), Login("o", "op"), Login("a", "admin"), Login("b", "admin")]).name == "a"
    assert acting_user([Login("v", "viewer"), Login("u", "user")]).name == "u"
    with pytest.raises(LoginError, match="no user with role user or higher"):
        acting_user([Login("v", "viewer")])
    with pytest.raises(LoginError):
        acting_user([])


def test_anonymous_callers_are_served_only_in_local_mode_and_only_from_this_machine():
    assert "log in to Airflow first" in anonymous_refusal(local_mode=False, client_host="127.0.0.1")
    assert "local_mode" in anonymous_refusal(local_mode=False, client_host="127.0.0.1")
    assert anonymous_refusal(local_mode=True, client_host="127.0.0.1") is None
    assert anonymous_refusal(local_mode=True, client_host="::1") is None
    refused = anonymous_refusal(local_mode=True, client_host="192.168.1.20")
    assert refused and "from this machine only, not from 192.168.1.20" in refused
    assert anonymous_refusal(local_mode=True, client_host=None) is not None
    assert is_loopback("127.0.0.2") and is_loopback("localhost") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.com")


def test_the_decider_is_the_name_airflow_recorded_for_the_user():
    assert decider({"id": "ana", "name": "Ana Lopez"}) == "Ana Lopez"
    assert decider({"id": "42", "name": ""}) == "42"  # FAB: numeric ids
    assert decider(None) == "unknown user"
