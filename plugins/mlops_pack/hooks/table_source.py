"""Hooks of the file and SQL sources: list and read files in object storage, run a query.

``FileSourceHook`` goes through Airflow's ObjectStoragePath, so ``s3://`` uses the Amazon
provider's connection (keys, region, ``endpoint_url`` for S3-compatible stores) and ``file://``
the local disk. ``SqlSourceHook`` asks the connection for its DB-API hook (common.sql; the postgres
provider's PostgresHook for a ``postgres`` connection).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from mlops_pack.core.file_source import FileInfo

CHUNK_ROWS = 50_000  # rows of one streamed frame: typed, then kept compact, before the next is read
BLOCK_BYTES = 1 << 20  # bytes of text read at a time


class FileSourceHook(BaseHook):
    """Files under a folder URL.

    :param url: folder URL (``file:///...`` or ``s3://bucket/prefix/``).
    :param conn_id: Airflow connection of the store (AWS connection for ``s3://``), or None.
    """

    hook_name = "MLOps file source"

    def __init__(self, url: str, conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.url, self.conn_id = url, conn_id

    def get_conn(self) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(self.url, conn_id=self.conn_id)

    def path(self, url: str) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(url, conn_id=self.conn_id)

    def list(self, pattern: str) -> list[FileInfo]:
        """Every file under the URL matching ``pattern``, with its fingerprint."""
        from mlops_pack.core.file_source import FileInfo, matches

        base = self.get_conn()
        found = []
        for path in base.glob(pattern):
            # str() of an ObjectStoragePath with a conn_id spells it as userinfo (s3://conn@bucket/key):
            # the source's URLs, and the state that remembers them, are the plain bucket/key form.
            url = str(path) if path.protocol == "file" else f"{path.protocol}://{path.path}"
            info = path.stat()
            if info.get("type", "file") != "file" or not matches(url, self.url, pattern):
                continue
            found.append(FileInfo.from_stat(url, info))
        return found

    def info(self, url: str) -> FileInfo:
        """The fingerprint of one file; FileSourceError names it when it does not exist."""
        from mlops_pack.core.file_source import FileInfo, FileSourceError

        path = self.path(url)
        try:
            return FileInfo.from_stat(url, path.stat())
        except (FileNotFoundError, OSError) as exc:
            raise FileSourceError(f"{url}: cannot read it: {exc}") from exc

    def read(self, info: FileInfo, fmt: str, *, delimiter: str = ",", max_bytes: int) -> pd.DataFrame:
        """The rows of one file whole (label files): ``chunks`` put together."""
        import pandas as pd

        parts = list(self.chunks(info, fmt, delimiter=delimiter, max_bytes=max_bytes))
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def chunks(self, info: FileInfo, fmt: str, *, delimiter: str = ",", max_bytes: int,
               chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The rows of one file, streamed in frames of at most ``chunk_rows``, as the format holds them:
        CSV cells as text, JSON and Parquet values as typed there. Memory is one chunk, whatever the
        file's size (a Parquet file: one batch of its row groups). Nothing is converted here (pandas'
        date guessing included): typing is the spec's job (core/columns.py). Every failure is a
        FileSourceError naming the file: over ``max_bytes`` (stored, or inflated from gzip), a NUL byte
        (its line and column), a malformed line. At least one frame comes out (its columns judged)."""
        import pandas as pd

        from mlops_pack.core.file_source import FileSourceError

        if info.size > max_bytes:
            raise FileSourceError(f"{info.url}: {info.size} bytes is over source.max_file_bytes={max_bytes}: "
                                  "refused, nothing of it read")
        try:
            with self.path(info.url).open("rb") as fh:
                if fmt == "parquet":
                    yield from _parquet_batches(fh, chunk_rows)
                    return
                stream = _GuardedText(fh, info.url, delimiter if fmt == "csv" else None, max_bytes,
                                      info.url.endswith(".gz"))
                if fmt == "csv":
                    yield from _csv_chunks(stream, delimiter, chunk_rows)
                else:
                    yield from _json_lines(stream, info.url, chunk_rows)
        except (OSError, ValueError, EOFError, pd.errors.ParserError) as exc:
            if isinstance(exc, FileSourceError):
                raise
            raise FileSourceError(f"{info.url}: cannot read it as {fmt}: {exc}") from exc


class SqlSourceHook(BaseHook):
    """Rows of a query through an Airflow connection's DB-API hook.

    :param conn_id: the database connection (e.g. type ``postgres``).
    """

    hook_name = "MLOps SQL source"

    def __init__(self, conn_id: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def get_conn(self) -> Any:
        hook = self.get_connection(self.conn_id).get_hook()
        if not hasattr(hook, "get_conn"):
            raise ValueError(f"connection {self.conn_id!r} does not give a database hook: {type(hook).__name__}")
        return hook

    def read(self, sql: str, parameters: list[Any]) -> pd.DataFrame:
        import pandas as pd

        with closing(self.get_conn().get_conn()) as conn, closing(conn.cursor()) as cursor:
            cursor.execute(sql, parameters or None)
            columns = [d[0] for d in cursor.description]
            return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)


class _GuardedText(io.RawIOBase):
    """A file's text bytes (inflated when gzipped) as a raw stream, each block through core's TextGuard
    (NUL bytes, the size limit) before the parser sees it."""

    def __init__(self, fh: Any, url: str, delimiter: str | None, max_bytes: int, gzipped: bool):
        import gzip

        from mlops_pack.core.file_source import TextGuard

        super().__init__()
        self.stream = gzip.GzipFile(fileobj=fh) if gzipped else fh
        self.guard = TextGuard(url, delimiter.encode() if delimiter else None, max_bytes)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        block = self.stream.read(min(len(buffer), BLOCK_BYTES))
        self.guard.feed(block)
        buffer[: len(block)] = block
        return len(block)


def _csv_chunks(stream: _GuardedText, delimiter: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    reader = pd.read_csv(io.BufferedReader(stream, BLOCK_BYTES), sep=delimiter, dtype=str, keep_default_na=False,
                         na_values=[""], chunksize=chunk_rows)
    with reader:
        empty = True
        for chunk in reader:  # a header without rows is one empty frame with the header's columns
            empty = False
            yield chunk
    if empty:
        yield pd.DataFrame()


def _parquet_batches(fh: Any, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Record batches of the file's row groups, one at a time, each as pandas would read the file."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    empty = True
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        empty = False
        yield batch.to_pandas()
    if empty:
        yield parquet.schema_arrow.empty_table().to_pandas()


def _json_lines(stream: _GuardedText, url: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """One row per JSON object line, values as JSON typed them (read with ``json``: pandas' read_json
    would turn date-like columns into timestamps by guessing their layout), ``chunk_rows`` at a time.
    A frame has the columns of every object seen so far in the file (a key first seen later is a
    column of the later frames only)."""
    import json

    import pandas as pd

    from mlops_pack.core.file_source import FileSourceError

    rows: list[dict] = []
    columns: dict[str, None] = {}
    emitted = False
    for number, line in enumerate(io.BufferedReader(stream, BLOCK_BYTES), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise FileSourceError(f"{url}: line {number} is not JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise FileSourceError(f"{url}: line {number} is a JSON {type(row).__name__}, not an object")
        columns.update(dict.fromkeys(row))
        rows.append(row)
        if len(rows) >= chunk_rows:
            yield pd.DataFrame.from_records(rows, columns=list(columns))
            rows, emitted = [], True
    if rows or not emitted:
        yield pd.DataFrame.from_records(rows, columns=list(columns))
