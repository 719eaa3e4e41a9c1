"""The promotion lock on an MLflow registry: lease, fence, heartbeat, and the fenced writes.

Every alias move of the pack goes through a :class:`RegistryLease` (``move_aliases``, ``set_challenger``,
``write_intent``, ``clear_intent``): each re-reads the lock and checks the local lease right before it
writes (the fence). The lock is a registered model ``<model>.promotion-lock``; the decisions (tags,
staleness, lease validity) are plain functions in core/promotion/lease.py, and docs/promotion.md has the
protocol and its residual windows.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlops_pack.hooks.mlflow import RegistryError, VersionAbandoned

if TYPE_CHECKING:
    from mlops_pack.core.promotion.lease import LeaseTerms
    from mlops_pack.core.promotion.repair import Intent
    from mlops_pack.hooks.mlflow import MlflowHook


class LockTimeout(RegistryError):
    """The promotion lock stayed held (and its lease kept being renewed) for the whole wait."""


class LockLost(RegistryError):
    """This promoter no longer owns the promotion lock (its lease ran out or was broken): it wrote nothing."""


@contextmanager
def promotion_lock(hook: MlflowHook, model_name: str, holder: str, *, wait_seconds: float = 300,
                   lease_seconds: float = 36, heartbeat_seconds: float | None = None, attempt: str = "",
                   version: str = "", kind: str = "promote") -> Iterator[RegistryLease]:
    """Hold the registry-wide lock on ``model_name``'s aliases; yields the RegistryLease.

    The lock is a registered model ``<model>.promotion-lock`` (atomic creation in every MLflow
    backend), tagged with a fresh owner token and a lease that a background heartbeat renews every
    ``heartbeat_seconds`` (default lease/6). A lock whose lease stopped being renewed for
    ``lease_seconds`` (a killed holder, a lost server) is broken by one elected waiter. Every alias
    write goes through the lease, which proves the token still owns the lock (``fence``). Release
    deletes the lock only if it is still ours; a release failure is logged, never raised over the
    body's own error.
    """
    from mlops_pack.core.promotion.lease import LeaseTerms

    terms = LeaseTerms(lease_seconds, heartbeat_seconds)
    lease = _acquire(hook, model_name, holder, terms, wait_seconds,
                     {"attempt": attempt, "version": version, "kind": kind})
    lease.start_heartbeat()
    try:
        yield lease
    finally:
        try:
            _release(lease)
        except Exception as exc:  # noqa: BLE001 - never mask the body's error; the lease runs out anyway
            hook.log.warning("Could not release the promotion lock of %s (%s); it will be broken when its "
                             "%gs lease runs out", model_name, exc, terms.lease_seconds)


def _acquire(hook: MlflowHook, model_name: str, holder: str, terms: LeaseTerms, wait_seconds: float,
             info: dict[str, str]) -> RegistryLease:
    from mlops_pack.core.promotion.lease import StaleWatch, backoff, lock_name

    name, deadline, watch = lock_name(model_name), time.monotonic() + wait_seconds, StaleWatch()
    outage = _Outage(hook, model_name, terms.unreachable_seconds)
    broken: list[dict[str, str]] = []
    tags, look_at = None, 0.0
    for tries in range(10**9):
        lease = outage.call(_try_create, hook, model_name, holder, terms, info)
        if lease is not None:
            lease.broken = broken
            return lease
        if time.monotonic() < look_at:  # a poll is one create; the lock's tags are read once a second
            time.sleep(backoff(tries))
            continue
        tags, look_at = outage.call(lock_tags, hook, name), time.monotonic() + min(1.0, terms.beat)
        if tags and watch.stale(tags, mono=time.monotonic(), wall=time.time()):
            if outage.call(_break, hook, model_name, tags):
                broken.append(tags)
            continue
        if time.monotonic() > deadline:
            raise LockTimeout(f"promotion lock of {model_name} at {hook.connection.tracking_uri} is held by "
                              f"{(tags or {}).get('holder', 'nobody (it came and went)')}; gave up after "
                              f"{wait_seconds:.0f}s")
        time.sleep(backoff(tries))
    raise AssertionError("unreachable")


def _try_create(hook: MlflowHook, model_name: str, holder: str, terms: LeaseTerms,
                info: dict[str, str]) -> RegistryLease | None:
    """The lease if we created (and still own) the lock, None on contention."""
    from mlflow.exceptions import MlflowException

    from mlops_pack.core.promotion.lease import fault_point, lock_name, new_token, owns, trace
    from mlops_pack.core.promotion.lease import lock_tags as new_lock_tags

    name, token, started = lock_name(model_name), new_token(), time.monotonic()
    try:
        hook.client.create_registered_model(
            name, tags=new_lock_tags(token, holder, terms, now=time.time(), **info),
            description=f"Lock on {model_name}'s aliases; removed by its holder, or broken when its lease ends.")
    except MlflowException as exc:
        # 404 too: MLflow's SQL store answers create with not-found when it races the holder's delete
        if exc.error_code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise
    fault_point("lock.created")
    # Re-verify: a breaker elected on an older acquisition could only delete ours in a window
    # docs/promotion.md describes; if it did, this is just contention.
    if not owns(lock_tags(hook, name), token):
        return None
    trace("enter", token, holder=holder)
    fault_point("lock.acquired")
    return RegistryLease(hook, model_name, token, holder, terms, renewed_at=started)


def _break(hook: MlflowHook, model_name: str, seen: dict[str, str]) -> bool:
    """Break the stale acquisition ``seen``: elect one breaker per token by creating a marker model,
    re-read, and delete only if the lock is still exactly ``seen``. True if we broke it."""
    from mlflow.exceptions import MlflowException

    from mlops_pack.core.promotion.lease import break_marker_name, fault_point, lock_name, may_break, trace

    name, marker = lock_name(model_name), break_marker_name(model_name, seen.get("token"))
    try:
        hook.client.create_registered_model(marker, tags={"lease_until": f"{time.time() + 60:.3f}"})
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
            raise
        _drop_stale_marker(hook, marker)
        return False
    try:
        fault_point("lock.stale_seen")
        if not may_break(seen, lock_tags(hook, name)):
            return False
        hook.log.warning("Breaking the promotion lock of %s held by %s: its lease was not renewed for %ss",
                         model_name, seen.get("holder"), seen.get("lease_seconds", "?"))
        trace("broken", seen.get("token") or "legacy", by=str(os.getpid()))
        _delete_model(hook, name)
        fault_point("lock.broken")
        return True
    finally:
        _delete_model(hook, marker)


def _drop_stale_marker(hook: MlflowHook, marker: str) -> None:
    """A breaker that died holding its marker would block breaking forever: markers live 60 s."""
    tags = lock_tags(hook, marker)
    if tags and time.time() > float(tags.get("lease_until") or 0):
        _delete_model(hook, marker)


def _release(lease: RegistryLease) -> None:
    from mlops_pack.core.promotion.lease import fault_point, lease_valid, owns, trace

    lease.stop_heartbeat()
    fault_point("lock.before_release")
    if lease.lost or not lease_valid(lease.renewed_at, lease.terms, time.monotonic()):
        # A breaker may be deleting it right now: deleting here could delete its successor's lock.
        lease.hook.log.warning("Not releasing the promotion lock of %s: its lease ran out (%s); a waiter breaks it",
                               lease.model_name, lease.lost or "no renewal in time")
        lease.lost = lease.lost or "lease ran out before release"  # its breaker records this attempt
        return
    if not owns(lock_tags(lease.hook, lease.name), lease.token):
        lease.hook.log.warning("The promotion lock of %s is no longer ours: left alone", lease.model_name)
        return
    trace("exit", lease.token)
    _delete_model(lease.hook, lease.name)


def lock_tags(hook: MlflowHook, name: str) -> dict[str, str]:
    """Tags of lock (or marker) ``name``; {} when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(hook.client.get_registered_model(name).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


def _delete_model(hook: MlflowHook, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        hook.client.delete_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


class RegistryLease:
    """One acquisition of the promotion lock: its owner token, its heartbeat thread, the fence, and the
    only writes of aliases and intents the pack makes (each fenced).

    ``broken`` lists the tags of stale acquisitions this one broke to get the lock (their holders'
    attempts are recorded by the new holder). ``lost`` says why the lease can no longer be trusted.
    """

    def __init__(self, hook: MlflowHook, model_name: str, token: str, holder: str, terms: LeaseTerms, *,
                 renewed_at: float):
        from mlops_pack.core.promotion.lease import lock_name

        self.hook, self.model_name, self.name = hook, model_name, lock_name(model_name)
        self.token, self.holder, self.terms = token, holder, terms
        self.renewed_at = renewed_at  # monotonic start of the last successful renewal (or the create)
        self.broken: list[dict[str, str]] = []
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fence(self, step: str) -> None:
        """Prove, immediately before a registry write, that this token still owns the lock.

        Reads the lock (its token must be ours) and then checks the local lease: a breaker waits a
        whole lease after the last renewal it saw, we stop ``margin`` seconds before that.
        """
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.promotion.lease import lease_valid, owns

        try:
            tags = lock_tags(self.hook, self.name) if self.lost is None else {}
        except MlflowException as exc:
            raise RegistryError(f"cannot check the promotion lock of {self.model_name} before: {step} at "
                                f"{self.hook.connection.tracking_uri}: {exc}") from exc
        if self.lost is None and not owns(tags, self.token):
            self.lost = "its lock model now belongs to another holder or is gone"
        if self.lost is None and not lease_valid(self.renewed_at, self.terms, time.monotonic()):
            self.lost = f"lease not renewed for {time.monotonic() - self.renewed_at:.0f}s"
        if self.lost:
            raise LockLost(f"lost the promotion lock of {self.model_name} before: {step} ({self.lost}); "
                           "nothing more is written, the next holder repairs and records this attempt")

    # ----- the fenced writes -----

    def write_intent(self, intent: Intent) -> None:
        from mlops_pack.core.promotion.lease import fault_point
        from mlops_pack.core.promotion.repair import INTENT_TAG

        self.fence("write the promotion intent")
        self.hook.client.set_registered_model_tag(self.model_name, INTENT_TAG, intent.to_tag())
        fault_point("alias.intent_written")

    def clear_intent(self) -> None:
        from mlflow.exceptions import MlflowException

        from mlops_pack.core.promotion.lease import fault_point
        from mlops_pack.core.promotion.repair import INTENT_TAG

        self.fence("clear the promotion intent")
        try:
            self.hook.client.delete_registered_model_tag(self.model_name, INTENT_TAG)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        fault_point("alias.intent_cleared")

    def move_aliases(self, moves: list[tuple[str, str | None]]) -> None:
        """Apply ``moves`` (alias -> version; None deletes the alias) in order, each fenced."""
        from mlops_pack.core.promotion.lease import fault_point, trace

        for alias, version in moves:
            self.fence(f"move {alias} to {version}")
            trace("write", self.token, alias=alias, version=version)
            if version is None:
                self.hook.client.delete_registered_model_alias(self.model_name, alias)
            else:
                self.hook.client.set_registered_model_alias(self.model_name, alias, version)
            fault_point(f"alias.{alias}_moved")

    def set_challenger(self, version: str) -> None:
        """Point ``challenger`` at ``version`` (fenced like every alias move); refuses (VersionAbandoned) a
        version a later train attempt marked abandoned meanwhile."""
        from mlops_pack.core.attempts import promotion_refusal

        refusal = promotion_refusal(self.model_name, version, self.hook.version_tags(self.model_name, version))
        if refusal:
            raise VersionAbandoned(refusal)
        self.move_aliases([("challenger", version)])

    # ----- the heartbeat -----

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"promotion-lock-heartbeat-{self.model_name}")
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.terms.beat)

    def _beat(self) -> None:
        from mlops_pack.core.promotion.lease import fault_point, heartbeat_tag, owns

        while not self._stop.wait(self.terms.beat):
            started = time.monotonic()
            try:
                fault_point("lock.heartbeat")
                if not owns(lock_tags(self.hook, self.name), self.token):
                    self.lost = "the lock was broken or taken by another holder"
                    return
                for key, value in heartbeat_tag(self.terms, time.time()).items():
                    self.hook.client.set_registered_model_tag(self.name, key, value)
                self.renewed_at = started
            except Exception as exc:  # noqa: BLE001 - keep beating; the fence stops writes if the lease runs out
                self.hook.log.warning("Promotion lock heartbeat of %s failed: %s", self.model_name, exc)


class _Outage:
    """Lets a lock waiter ride out a registry that stops answering (a restart) for a bounded time."""

    def __init__(self, hook: MlflowHook, model_name: str, seconds: float):
        self.hook, self.model_name, self.seconds = hook, model_name, seconds
        self.since: float | None = None

    def call(self, fn: Any, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            result = fn(*args)
        except MlflowException as exc:
            if exc.error_code not in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
                raise RegistryError(f"cannot take the promotion lock of {self.model_name} at "
                                    f"{self.hook.connection.tracking_uri}: {exc}") from exc
            self.since = self.since or time.monotonic()
            if time.monotonic() - self.since > self.seconds:
                raise RegistryError(f"cannot take the promotion lock of {self.model_name}: "
                                    f"{self.hook.connection.tracking_uri} did not answer for "
                                    f"{self.seconds:.0f}s: {exc}") from exc
            self.hook.log.warning("Registry %s not answering while waiting for the lock: %s",
                                  self.hook.connection.tracking_uri, exc)
            time.sleep(1)
            return None
        self.since = None
        return result
