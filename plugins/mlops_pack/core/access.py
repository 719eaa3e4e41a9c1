"""Who may log in to an embedded Airflow home, who a command acts as, and who the plugin's pages serve
without a login. Pure decisions: no Airflow, no HTTP.

Homes made by ``mlops-pack run`` / ``mlops-pack ui`` and the demo use Airflow's simple auth manager with
named users (``NAME:ROLE``, from ``--user`` or ``<home>/users.txt``), so a decision in the Airflow UI is
recorded under its user's name. The one exception is an explicit *local mode* (``--no-login``: Airflow's
``simple_auth_manager_all_admins`` and ``[mlops] local_mode``): no login, every caller is Airflow's
anonymous admin, and the plugin's pages serve anonymous callers, but only from this machine.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from mlops_pack.core.errors import MlopsError

# The simple auth manager's roles, least to most (each grants what the ones before it do).
ROLES = ("viewer", "user", "op", "admin")
USERS_FILE = "users.txt"  # in the Airflow home: one NAME:ROLE a line
# Airflow's name for the caller in all-admins mode (SimpleAuthManagerLogin._create_anonymous_admin_user).
ANONYMOUS = "Anonymous"
# ':' and ',' separate users in [core] simple_auth_manager_users; '|' teams. Nothing else surprising in a name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
FALLBACK_NAME = "admin"


class LoginError(MlopsError, ValueError):
    """A user given as ``NAME:ROLE`` (``--user``, users.txt) that Airflow could not take."""


@dataclass(frozen=True)
class Login:
    """A user of an embedded home's simple auth manager."""

    name: str
    role: str  # one of ROLES

    def __str__(self) -> str:
        return f"{self.name}:{self.role}"


def parse_login(text: str) -> Login:
    """``"NAME:ROLE"`` -> Login (the role any case, of :data:`ROLES`); LoginError saying what is wrong."""
    name, sep, role = text.strip().partition(":")
    if not sep:
        raise LoginError(f"a user is NAME:ROLE (role one of {', '.join(ROLES)}), such as ana:admin; got {text!r}")
    if not NAME.match(name):
        raise LoginError(f"user name {name!r} in {text!r}: letters, digits and _.@- only (up to 64, not starting "
                         "with a symbol)")
    if name == ANONYMOUS:
        raise LoginError(f"{ANONYMOUS!r} is Airflow's name for a caller without a login; choose another name")
    if role.strip().lower() not in ROLES:
        raise LoginError(f"role {role!r} of user {name!r}: one of {', '.join(ROLES)}")
    return Login(name, role.strip().lower())


def parse_logins(lines: Iterable[str]) -> list[Login]:
    """Users from ``--user`` values or the lines of users.txt (blank lines and ``#`` comments skipped);
    a name given twice is an error (which role would it have?)."""
    logins: list[Login] = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        login = parse_login(text)
        if any(other.name == login.name for other in logins):
            raise LoginError(f"user {login.name!r} is given twice")
        logins.append(login)
    return logins


def default_login(os_user: str | None) -> Login:
    """The one user of a home nobody named users for: the person at the terminal (their OS login name), an
    admin, so the demo's decisions carry a person's name; ``admin`` when that name is not one Airflow takes."""
    name = (os_user or "").strip()
    return Login(name if NAME.match(name) and name != ANONYMOUS else FALLBACK_NAME, "admin")


def users_setting(logins: Iterable[Login]) -> str:
    """The value of ``[core] simple_auth_manager_users`` for ``logins`` (``ana:ADMIN,bob:VIEWER``)."""
    return ",".join(f"{login.name}:{login.role.upper()}" for login in logins)


def acting_user(logins: Iterable[Login], needs: str = "user") -> Login:
    """The user a command (``mlops-pack run``, ``ingest``, the demo) acts as through the REST API: the
    first of the highest role; LoginError when nobody has at least ``needs`` (triggering a DAG run
    needs ``user``)."""
    found = sorted(logins, key=lambda login: -ROLES.index(login.role))
    if not found or ROLES.index(found[0].role) < ROLES.index(needs):
        raise LoginError(f"no user with role {needs} or higher among {[str(x) for x in found]}: the command triggers "
                         f"runs through Airflow's REST API as one; add one, such as --user ops:admin")
    return found[0]


def is_loopback(host: str | None) -> bool:
    """Is ``host`` (a client address as the server saw it) this machine?"""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def anonymous_refusal(*, local_mode: bool, client_host: str | None) -> str | None:
    """Why the plugin's pages refuse a caller without an Airflow login (no token, or Airflow's anonymous
    all-admins user), or None when they serve it: only in local mode, and only from this machine."""
    if not local_mode:
        return ("log in to Airflow first (the Airflow UI's login page, or a token from POST /auth/token as "
                "'Authorization: Bearer <token>'); anonymous callers are served only in local mode "
                "([mlops] local_mode = True, `mlops-pack run/ui --no-login`)")
    if not is_loopback(client_host):
        return (f"local mode serves anonymous callers from this machine only, not from {client_host or 'unknown'}; "
                "log in to Airflow first")
    return None


def decider(user: dict | None, fallback: str = "unknown user") -> str:
    """The name to record for the person who decided, from Airflow's ``{"id", "name"}`` of a user (HITL's
    ``responded_by_user``); ``fallback`` when Airflow recorded nobody."""
    if not isinstance(user, dict):
        return fallback
    return str(user.get("name") or user.get("id") or fallback)
