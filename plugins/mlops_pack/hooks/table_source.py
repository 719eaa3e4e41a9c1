"""Hooks of the file and SQL sources: list and read files in object storage, run a query.

``FileSourceHook`` goes through Airflow's ObjectStoragePath, so ``s3://`` uses the Amazon
provider's connection (keys, region, ``endpoint_url`` for S3-compatible stores) and ``file://``
the local disk. ``SqlSourceHook`` asks the connection for its DB-API hook (common.sql; the postgres
provider's PostgresHook for a ``postgres`` connection).
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from mlops_pack.core.file_source import FileInfo


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
        """The rows of one file as the format holds them: CSV cells as text, JSON and Parquet values as
        typed there. Nothing is converted here (pandas' date guessing included): typing is the spec's
        job (core/columns.py)."""
        import io

        import pandas as pd

        from mlops_pack.core.file_source import FileSourceError, nul_position

        if info.size > max_bytes:
            raise FileSourceError(f"{info.url}: {info.size} bytes is over source.max_file_bytes={max_bytes}")
        gzipped = info.url.endswith(".gz")
        try:
            with self.path(info.url).open("rb") as fh:
                if fmt == "parquet":
                    return pd.read_parquet(fh)
                data = _text_bytes(fh, info.url, gzipped, max_bytes)
            nul = nul_position(data, delimiter.encode()) if fmt == "csv" else None  # JSON refuses raw NULs itself
            if nul:
                raise FileSourceError(f"{info.url}: line {nul[0]}, column {nul[1]!r} holds a NUL byte: refused (a "
                                      "NUL silently cuts the value and key it is in)")
            if fmt == "csv":
                return pd.read_csv(io.BytesIO(data), sep=delimiter, dtype=str, keep_default_na=False, na_values=[""])
            return _json_lines(data, info.url)
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


def _text_bytes(fh: Any, url: str, gzipped: bool, max_bytes: int) -> bytes:
    """The file's text bytes, inflated when gzipped, never more than ``max_bytes`` of them (a gzip bomb
    stops there with an error naming the file)."""
    import gzip

    from mlops_pack.core.file_source import FileSourceError

    stream = gzip.GzipFile(fileobj=fh) if gzipped else fh
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileSourceError(f"{url}: inflates past source.max_file_bytes={max_bytes}: refused")
    return data


def _json_lines(data: bytes, url: str) -> pd.DataFrame:
    """One row per JSON object line, values as JSON typed them (read with ``json``: pandas' read_json
    would turn date-like columns into timestamps by guessing their layout)."""
    import json

    import pandas as pd

    from mlops_pack.core.file_source import FileSourceError

    rows = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise FileSourceError(f"{url}: line {number} is not JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise FileSourceError(f"{url}: line {number} is a JSON {type(row).__name__}, not an object")
        rows.append(row)
    return pd.DataFrame.from_records(rows)
