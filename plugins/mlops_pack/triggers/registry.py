"""ChampionAliasTrigger: an asset event whenever a model's ``@champion`` alias points somewhere new.

Why polling and not MLflow webhooks: MLflow 3.17's webhooks are sent by its tracking server only
(a registry used through a SQLite or PostgreSQL URI, the embedded default, sends none), and they
need an HTTP endpoint the server can reach; polling the alias from the triggerer works with every
registry the pack supports and costs one small registry call per poll.

It reports the alias it sees when it starts, then every change: the task it starts compares with
the promotion log, so a move made while the triggerer was down is not lost, and a move the pack
made itself (already recorded) is not recorded twice.

It never ends on its own: a model not registered yet, an alias not set, a registry that does not
answer (or a connection that cannot be read) are logged, with the registry URI it reads, each time
that status changes and again every ten minutes, and it tries again at the next poll. The decision
("report this version?", "what does this read mean?") is ``core.promotion.events.alias_poll``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from mlops_pack.hooks.mlflow import MlflowHook


class ChampionAliasTrigger(BaseEventTrigger):
    """Yield ``{"model", "alias", "version"}`` when ``model@alias`` is first seen and whenever it moves.

    :param model: registered model name (the pipeline's name).
    :param alias: the alias watched (``champion``).
    :param mlflow_conn_id: MLflow connection (default ``mlflow_default``; without one, ``[mlops]``
        settings name the registry).
    :param poll_interval: seconds between reads of the alias.
    """

    def __init__(self, *, model: str, alias: str = "champion", mlflow_conn_id: str = "mlflow_default",
                 poll_interval: float = 60.0):
        super().__init__()
        self.model, self.alias, self.mlflow_conn_id = model, alias, mlflow_conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("mlops_pack.triggers.registry.ChampionAliasTrigger",
                {"model": self.model, "alias": self.alias, "mlflow_conn_id": self.mlflow_conn_id,
                 "poll_interval": self.poll_interval})

    async def run(self):
        from mlops_pack.core.promotion.events import alias_poll, should_log

        self.log.info("Watching %s@%s every %gs (connection %s, else the [mlops] settings)", self.model,
                      self.alias, self.poll_interval, self.mlflow_conn_id)
        hook: MlflowHook | None = None
        seen: str | None = None
        last_status, logged_at = None, 0.0
        while True:
            try:
                if hook is None:
                    hook = await self._hook()
                # mlflow (imported on the first read) and its store calls are blocking: off the event loop.
                version, registered, registry = await asyncio.to_thread(_read_alias, hook, self.model, self.alias)
                poll = alias_poll(self.model, self.alias, seen, version=version, registered=registered,
                                  registry=registry)
            except Exception as exc:  # noqa: BLE001 - a watcher outlives any registry failure; the log says why
                poll = alias_poll(self.model, self.alias, seen, error=f"{type(exc).__name__}: {exc}")
                hook = None  # look the connection up again: it may have been fixed
            now = time.monotonic()
            if should_log(poll.status, last_status, logged_at, now):
                (self.log.warning if poll.problem else self.log.info)("%s", poll.status)
                last_status, logged_at = poll.status, now
            if poll.event is not None:
                yield TriggerEvent(poll.event)
            seen = poll.seen
            await asyncio.sleep(self.poll_interval)

    async def _hook(self) -> MlflowHook:
        # The async lookup: a sync one from a worker thread waits on the triggerer's event loop.
        try:
            conn = await MlflowHook.aget_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            conn = None
        return _KnownConnectionHook(self.mlflow_conn_id, conn)


def _read_alias(hook: MlflowHook, model: str, alias: str) -> tuple[str | None, bool, str]:
    """``(version or None, model registered?, registry URI)`` of ``model@alias``; raises when the registry
    cannot answer. Runs in a worker thread."""
    version = hook.alias_version(model, alias)
    registered = True
    if version is None:  # no alias, or no model: the log says which
        from mlflow.exceptions import MlflowException

        try:
            hook.client.get_registered_model(model)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            registered = False
    return version, registered, hook.connection.registry_uri


class _KnownConnectionHook(MlflowHook):
    """MlflowHook with its connection looked up already (None: not defined, the ``[mlops]`` settings apply)."""

    def __init__(self, conn_id: str, conn: Any):
        super().__init__(conn_id)
        self._known = conn

    def get_connection(self, conn_id: str) -> Any:  # type: ignore[override]
        if self._known is None:
            raise AirflowNotFoundException(f"connection {conn_id!r} is not defined")
        return self._known
