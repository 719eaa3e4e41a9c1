"""PipelineStorageHook: where a pipeline's partitions, reports and logs live in object storage."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook, ObjectStoragePath

from mlops_pack import settings


class PipelineStorageHook(BaseHook):
    """Resolves ``<storage_root>/<pipeline>/<area>/<partition>`` as ObjectStoragePath.

    :param pipeline: pipeline name (the spec's ``name``).
    :param storage_root: URL such as ``file:///data/mlops`` or ``s3://bucket/mlops``; default
        ``[mlops] storage_root``.
    :param conn_id: Airflow connection for the storage (``[mlops] storage_conn_id``), e.g. ``aws_default``.
    """

    hook_name = "MLOps pipeline storage"

    def __init__(self, pipeline: str, storage_root: str | None = None, conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.storage_root = storage_root or settings.storage_root()
        self.conn_id = conn_id if conn_id is not None else settings.storage_conn_id()

    def get_conn(self) -> ObjectStoragePath:
        return self.root

    @property
    def root(self) -> ObjectStoragePath:
        return ObjectStoragePath(self.storage_root, conn_id=self.conn_id) / self.pipeline

    def area(self, name: str) -> ObjectStoragePath:
        """``raw``, ``validated``, ``quarantine``, ``training``, ``predictions``, ``reports/drift`` ..."""
        return self.root / name

    def partition(self, area: str, key: str) -> ObjectStoragePath:
        """The folder of partition ``key`` (named by its data, see docs/storage.md) in ``area``."""
        return self.area(area) / key

    def state(self, name: str) -> ObjectStoragePath:
        """A small state file of the pipeline (crawl state, drift-signal cooldown): ``state/<name>``."""
        return self.root / "state" / name

    def path(self, uri: str) -> ObjectStoragePath:
        """An ObjectStoragePath for a URI read from an asset event or a manifest."""
        return ObjectStoragePath(uri, conn_id=self.conn_id)
