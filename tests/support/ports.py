"""Loopback ports and the live services (PostgreSQL, Redis) the production-shaped tests use."""

from __future__ import annotations

import os
import socket

import pytest

SERVICES_REQUIRED = os.environ.get("MLOPS_REQUIRE_SERVICES") == "1"  # CI: a missing service fails, not skips


def free_port() -> int:
    from mlops_pack.cli.runner import free_port as pack_free_port  # one implementation, the CLI's

    return pack_free_port()


def service_up(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a live service is missing, unless CI requires services (then fail)."""
    if not service_up(host, port):
        if SERVICES_REQUIRED:
            pytest.fail(f"{name} at {host}:{port} is required (MLOPS_REQUIRE_SERVICES=1) but not reachable")
        pytest.skip(f"{name} at {host}:{port} is not reachable")
