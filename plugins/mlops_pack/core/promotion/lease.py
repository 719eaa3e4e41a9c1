"""The promotion lock and alias-move intent: pure decisions, no MLflow or Airflow import.

The lock is a registered model ``<model>.promotion-lock`` (creating one is atomic in every MLflow
backend). Its tags say who holds it: ``token`` (one per acquisition), ``holder``, ``attempt``,
``version``, ``kind``, ``lease_seconds`` and ``lease_until`` (renewed by a heartbeat). MLflow has no
compare-and-set, so staleness is judged on this process's monotonic clock: a lock whose
(token, lease_until) has not changed for a whole lease since we first saw it is stale. The holder
stops trusting its own lease ``margin`` seconds earlier than that, so a breaker and a live holder
never both act (docs/promotion.md has the argument and the residual windows).

The intent that lets the next holder finish or undo an interrupted alias move, and the repair plan,
are in ``repair.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass

LOCK_SUFFIX = ".promotion-lock"
LEGACY_LEASE_SECONDS = 900.0  # locks written before leases existed carry no lease_seconds tag
FAULT_ENV = "MLOPS_FAULT_POINT"  # test-only: "step:kill", "step:sleep:3", "step:raise[@once-file]", comma separated
TRACE_ENV = "MLOPS_LOCK_TRACE"  # test-only: file that gets one JSON line per lock enter/exit/break/write


def lock_name(model: str) -> str:
    return f"{model}{LOCK_SUFFIX}"


def break_marker_name(model: str, token: str | None) -> str:
    """Registered model whose atomic creation elects the one breaker of the lock acquisition ``token``."""
    return f"{model}{LOCK_SUFFIX}.break-{token or 'legacy'}"


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class LeaseTerms:
    """Lease of the lock: renewed every ``heartbeat_seconds``; the holder stops writing ``margin``
    seconds before a breaker may break it (covers a write in flight and clock-rate drift)."""

    lease_seconds: float = 36.0
    heartbeat_seconds: float | None = None
    unreachable_seconds: float = 120.0  # how long a waiter rides out a registry that does not answer (a restart)

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {self.lease_seconds}")
        if self.heartbeat_seconds is not None and not 0 < self.heartbeat_seconds <= self.lease_seconds / 3:
            raise ValueError(f"heartbeat_seconds must be in (0, lease_seconds/3 = {self.lease_seconds / 3:g}], "
                             f"got {self.heartbeat_seconds}")

    @property
    def beat(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 6

    @property
    def margin(self) -> float:
        return self.lease_seconds / 3


def lock_tags(token: str, holder: str, terms: LeaseTerms, *, now: float, attempt: str = "", version: str = "",
              kind: str = "promote") -> dict[str, str]:
    return {"token": token, "holder": holder, "attempt": attempt, "version": version, "kind": kind,
            "lease_seconds": f"{terms.lease_seconds:g}", "acquired_at": _iso(now), **heartbeat_tag(terms, now)}


def heartbeat_tag(terms: LeaseTerms, now: float) -> dict[str, str]:
    # The value changes at every renewal: it is both the heartbeat and the (informational) expiry.
    return {"lease_until": f"{now + terms.lease_seconds:.3f}"}


def owns(tags: dict[str, str] | None, token: str) -> bool:
    return bool(tags) and tags.get("token") == token


def lease_valid(renewed_at: float, terms: LeaseTerms, now: float) -> bool:
    """May the holder still write? ``renewed_at``: monotonic start of its last successful renewal."""
    return now < renewed_at + terms.lease_seconds - terms.margin


def may_break(seen: dict[str, str], current: dict[str, str] | None) -> bool:
    """Break only the very acquisition judged stale: same token and same heartbeat, re-read just now."""
    return bool(current) and (current.get("token"), current.get("lease_until")) == (
        seen.get("token"), seen.get("lease_until"))


class StaleWatch:
    """Judges one lock name's staleness from a waiter's repeated reads of its tags.

    Stale when the (token, lease_until) pair has not changed for the lock's lease on *our*
    monotonic clock (no clock comparison between machines), or when its wall-clock ``lease_until``
    is more than a whole further lease in the past (a lock abandoned long ago need not be watched
    for a full lease; tolerates clock skew up to a lease).
    """

    def __init__(self) -> None:
        self._seen: tuple[str | None, str | None] | None = None
        self._since = 0.0

    def stale(self, tags: dict[str, str], *, mono: float, wall: float) -> bool:
        key = (tags.get("token"), tags.get("lease_until"))
        if key != self._seen:
            self._seen, self._since = key, mono
        lease = _float(tags.get("lease_seconds")) or LEGACY_LEASE_SECONDS
        if mono - self._since >= lease:
            return True
        until = _float(tags.get("lease_until"))
        if until is None:  # a legacy lock: its acquisition time is all we have
            acquired = _parse_iso(tags.get("acquired_at"))
            return acquired is not None and wall - acquired > lease
        return wall > until + lease


def backoff(tries: int, rng: random.Random | None = None) -> float:
    """Jittered wait between lock polls: quick at first, at most ~0.36 s, so waiters do not poll in step."""
    base = min(0.3, 0.05 * 2 ** min(tries, 10))
    return base * (0.6 + 0.6 * (rng or random).random())


# ----- test-only hooks: one environment lookup on the normal path -----

def fault_point(step: str) -> None:
    """Test-only fault injection at a step boundary, driven by ``MLOPS_FAULT_POINT``."""
    spec = os.environ.get(FAULT_ENV)
    if spec:
        _inject(spec, step)


def _inject(spec: str, step: str) -> None:
    for item in spec.split(","):
        item, _, once = item.strip().partition("@")  # "@<file>": fire once across processes
        point, _, action = item.partition(":")
        if point != step or (once and not _first(once)):
            continue
        trace("fault", "", step=step, action=action)  # a test can act while the fault holds (a sleep)
        verb, _, arg = action.partition(":")
        if verb == "kill":
            os.kill(os.getpid(), signal.SIGKILL)  # what kill -9 does: no finally, no flush
        elif verb == "sleep":
            time.sleep(float(arg or 1))
        elif verb == "raise":
            raise RuntimeError(f"injected fault at {step}")



def _first(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def trace(event: str, token: str, **extra: str | None) -> None:
    """Test-only: append a lock event to ``MLOPS_LOCK_TRACE`` so a test can prove no two holders overlap."""
    path = os.environ.get(TRACE_ENV)
    if path:
        line = json.dumps({"event": event, "token": token, "t": time.time(), "pid": os.getpid(), **extra})
        with open(path, "a", encoding="utf-8") as fh:  # one short O_APPEND write per line: no interleaving
            fh.write(line + "\n")


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _parse_iso(text: str | None) -> float | None:
    try:
        return dt.datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None
