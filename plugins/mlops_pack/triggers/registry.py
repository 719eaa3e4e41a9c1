"""ChampionAliasTrigger: an asset event whenever a model's ``@champion`` alias points somewhere new.

Why polling and not MLflow webhooks: MLflow 3.17's webhooks are sent by its tracking server only
(a registry used through a SQLite or PostgreSQL URI, the embedded default, sends none), and they
need an HTTP endpoint the server can reach; polling the alias from the triggerer works with every
registry the pack supports and costs one small registry call per poll.

It reports the alias it sees when it starts, then every change: the task it starts compares with
the promotion log, so a move made while the triggerer was down is not lost, and a move the pack
made itself (already recorded) is not recorded twice.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from mlops_pack.hooks.mlflow import MlflowHook, RegistryError


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
        # mlflow is imported in a thread: an import on the event loop stalls every trigger.
        await asyncio.to_thread(importlib.import_module, "mlflow")
        # The async lookup: a sync one from a worker thread waits on the triggerer's event loop.
        try:
            conn = await MlflowHook.aget_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            conn = None
        hook = _KnownConnectionHook(self.mlflow_conn_id, conn)
        seen: str | None = None
        while True:
            try:
                version = await asyncio.to_thread(hook.alias_version, self.model, self.alias)
            except RegistryError as exc:  # a registry outage: try again at the next poll
                self.log.warning("Cannot read %s@%s: %s", self.model, self.alias, exc)
                version = seen
            if version is not None and version != seen:
                self.log.info("%s@%s is version %s (was %s)", self.model, self.alias, version, seen)
                yield TriggerEvent({"model": self.model, "alias": self.alias, "version": version,
                                    "seen_before": seen})
                seen = version
            await asyncio.sleep(self.poll_interval)


class _KnownConnectionHook(MlflowHook):
    """MlflowHook with its connection looked up already (None: not defined, the ``[mlops]`` settings apply)."""

    def __init__(self, conn_id: str, conn: Any):
        super().__init__(conn_id)
        self._known = conn

    def get_connection(self, conn_id: str) -> Any:  # type: ignore[override]
        if self._known is None:
            raise AirflowNotFoundException(f"connection {conn_id!r} is not defined")
        return self._known
