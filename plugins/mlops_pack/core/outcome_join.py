"""The streaming join behind core/outcomes.py: predictions and labels by key, in bounded memory.

Both sides are hash-partitioned by key into Arrow IPC bucket files (about ``BUCKET_ROWS`` rows of
both sides per bucket when the row counts are known from Parquet footers), then joined one bucket at
a time: a bucket's labels are resolved to one per key (latest arrival wins; repeats and conflicts
counted), joined with the bucket's predictions (pyarrow's hash join), and the joined rows feed each
(partition, model version)'s statistics (core/outcome_metrics.py). Memory holds one bucket, so it
stays flat as rows grow; the buckets cost disk, under the caller's ``work_dir``.

Keys are hashed by a vectorised polynomial hash over the Arrow string buffers (or the integers),
finished by splitmix64's mixer: the same key hashes alike on both sides whatever its batch, with
no Python object per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SAMPLE_KEYS, BUCKET_ROWS, DEFAULT_BUCKETS, MAX_BUCKETS, READ_ROWS = 10, 200_000, 64, 512, 131_072


class BucketJoin:
    """Hash-partitions predictions and labels by key into on-disk Arrow buckets, then joins bucket by bucket."""

    def __init__(self, folder, key: str, task: str, buckets: int, calibration_bins: int):
        self.folder, self.key, self.task, self.buckets, self.bins = folder, key, task, buckets, calibration_bins
        self.key_type = None
        self.classes: dict[str, int] = {}  # class label (canonical text) -> code
        self.groups: list[tuple[str, str, float | None, tuple[int, ...]]] = []  # partition, version, time, proba
        self.group_ids: dict[tuple[str, str], int] = {}
        self.predicted: list[int] = []
        self.stats: list[Any] = []
        self.layouts: dict[tuple[int, ...], int] = {}  # proba classes -> file layout
        self.writers: dict[tuple[str, int, int], Any] = {}
        self.seq = self.label_rows = self.label_keys = self.conflicts = 0
        self.conflict_sample: set[str] = set()

    def add_predictions(self, source) -> None:
        import numpy as np
        import pyarrow as pa

        where = f"predictions of partition {source.partition!r}"
        for batch in _batches(source.data, where, lambda names: [self.key, *_prediction_columns(names)]):
            missing = [c for c in (self.key, "prediction", "model_version") if c not in batch.schema.names]
            if missing:
                raise ValueError(f"{where} lack column(s) {missing} (have {batch.schema.names})")
            proba = [n for n in batch.schema.names if n.startswith("proba_")] if self.task == "classification" else []
            layout = self.layouts.setdefault(tuple(self._code(n[len("proba_"):]) for n in proba), len(self.layouts))
            versions = batch.column("model_version").dictionary_encode()
            lookup = np.array([self._group(source, str(v), layout) for v in versions.dictionary.to_pylist()])
            group = lookup[versions.indices.to_numpy(zero_copy_only=False)].astype(np.int32)
            for g, n in enumerate(np.bincount(group, minlength=len(self.predicted))):
                self.predicted[g] += int(n)
            keys = self._keys(batch.column(self.key), where)
            h = _hash(keys)
            columns = {"key": keys, "h": pa.array(h), "g": pa.array(group),
                       "pred": self._values(batch.column("prediction"))}
            columns |= {f"p{i}": batch.column(n).cast(pa.float64()) for i, n in enumerate(proba)}
            self._scatter("p", layout, pa.record_batch(columns), h)

    def _group(self, source, version: str, layout: int) -> int:
        from mlops_pack.core.outcome_metrics import GroupStats

        classes = next(c for c, i in self.layouts.items() if i == layout)
        g = self.group_ids.setdefault((source.partition, version), len(self.groups))
        if g == len(self.groups):
            self.groups.append((source.partition, version, _epoch(source.predicted_at), classes))
            self.predicted.append(0)
            self.stats.append(GroupStats(self.task, list(classes) or None, self.bins))
        elif self.groups[g][3] != classes:
            raise ValueError(f"predictions of partition {source.partition!r}, model version {version}, change their "
                             "proba_<class> columns between batches")
        return g

    def add_labels(self, item: Any, column: str, time_column: str | None) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        where = f"labels {_name(item)}"
        for batch in _batches(item, where, lambda names: [self.key, column, *([time_column] if time_column else [])]):
            missing = [c for c in (self.key, column, time_column) if c and c not in batch.schema.names]
            if missing:
                raise ValueError(f"{where} lack column(s) {missing} (have {batch.schema.names})")
            value = batch.column(column)
            known = pc.is_valid(value)
            if pa.types.is_floating(value.type):
                known = pc.and_(known, pc.invert(pc.is_nan(value)))
            batch = batch.filter(known)
            keys = self._keys(batch.column(self.key), where)
            times = _seconds(batch.column(time_column), where) if time_column else np.full(batch.num_rows, -np.inf)
            columns = {"key": keys, "label": self._values(batch.column(column)), "t": pa.array(times),
                       "seq": pa.array(np.arange(self.seq, self.seq + batch.num_rows))}
            self.seq += batch.num_rows
            self._scatter("l", 0, pa.record_batch(columns), _hash(keys))

    def run(self) -> None:
        """Join bucket by bucket: resolve the bucket's labels, join each layout's predictions, accumulate."""
        for b in range(self.buckets):
            labels = self._read("l", b, 0)
            resolved = self._resolve(labels) if labels is not None else None
            for layout in self.layouts.values():
                predictions = self._read("p", b, layout)
                if predictions is not None and resolved is not None:
                    self._accumulate(predictions.join(resolved, keys="key", join_type="inner"))

    def _resolve(self, labels):
        """One label per key, the latest arrival (latest time, then latest read); counts repeats and conflicts."""
        import numpy as np
        import pyarrow.compute as pc

        labels = labels.sort_by([("key", "ascending"), ("t", "ascending"), ("seq", "ascending")])
        keys, values, n = labels.column("key").combine_chunks(), labels.column("label").combine_chunks(), labels.num_rows
        same_key = pc.equal(keys.slice(1), keys.slice(0, n - 1))
        last = np.append(~same_key.to_numpy(zero_copy_only=False), True)
        differs = pc.and_(same_key, pc.not_equal(values.slice(1), values.slice(0, n - 1)))
        conflicting = pc.unique(keys.slice(1).filter(differs))
        self.label_rows += n
        self.label_keys += int(last.sum())
        self.conflicts += len(conflicting)
        self.conflict_sample |= {str(k) for k in conflicting.slice(0, SAMPLE_KEYS).to_pylist()}
        return labels.filter(last).select(["key", "label", "t"])

    def _accumulate(self, joined) -> None:
        import numpy as np

        from mlops_pack.core.outcome_metrics import BLOCKS

        if not joined.num_rows:
            return
        group = joined.column("g").to_numpy()
        h = joined.column("h").to_numpy()
        block, priority = ((h >> np.uint64(8)) % np.uint64(BLOCKS)).astype(np.int64), h >> np.uint64(20)
        truth, pred = joined.column("label").to_numpy(), joined.column("pred").to_numpy()
        times = joined.column("t").to_numpy()
        proba_names = [n for n in joined.schema.names if n.startswith("p") and n[1:].isdigit()]
        proba = np.column_stack([joined.column(n).to_numpy() for n in proba_names]) if proba_names else None
        for g in np.unique(group):
            rows = np.flatnonzero(group == g)
            at = self.groups[g][2]
            lag = times[rows] - at if at is not None else None
            self.stats[g].add(truth[rows], pred[rows], None if proba is None else proba[rows], block[rows], lag,
                              priority[rows])

    def _keys(self, column, where: str):
        import pyarrow as pa
        import pyarrow.compute as pc

        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if column.null_count:
            raise ValueError(f"{where}: {column.null_count} row(s) have no {self.key}")
        if self.key_type is None:
            self.key_type = pa.int64() if pa.types.is_integer(column.type) else pa.string()
        try:
            return pc.cast(column, self.key_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"{where}: key {self.key} of type {column.type} does not match the predictions' "
                             f"{self.key_type} keys: {exc}") from exc

    def _values(self, column):
        """Regression: float64 values; classification: class codes (labels compared as canonical text)."""
        import numpy as np
        import pyarrow as pa

        if self.task == "regression":
            return column.cast(pa.float64())
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
        lookup = np.array([self._code(v) for v in encoded.dictionary.to_pylist()] or [0], dtype=np.int32)
        return pa.array(lookup[encoded.indices.to_numpy(zero_copy_only=False)])

    def _code(self, value: Any) -> int:
        return self.classes.setdefault(_canonical(value), len(self.classes))

    def _scatter(self, side: str, layout: int, batch, h) -> None:
        import numpy as np
        import pyarrow as pa

        bucket = (h % np.uint64(self.buckets)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        batch, counts = batch.take(pa.array(order)), np.bincount(bucket, minlength=self.buckets)
        for b, start in zip(np.flatnonzero(counts), np.cumsum(counts)[np.flatnonzero(counts)] - counts[counts > 0],
                            strict=True):
            part = batch.slice(int(start), int(counts[b]))
            writer = self.writers.get((side, int(b), layout))
            if writer is None:
                sink = pa.OSFile(str(self.folder / f"{side}-{layout}-{b}.arrow"), "wb")
                writer = self.writers[(side, int(b), layout)] = (sink, pa.ipc.new_stream(sink, part.schema))
            writer[1].write_batch(part)

    def _read(self, side: str, bucket: int, layout: int):
        import pyarrow as pa

        writer = self.writers.pop((side, bucket, layout), None)
        if writer is None:
            return None
        writer[1].close()
        writer[0].close()
        path = self.folder / f"{side}-{layout}-{bucket}.arrow"
        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_stream(source).read_all()
        path.unlink()
        return table


def _prediction_columns(names: list[str]) -> list[str]:
    return [n for n in names if n in ("prediction", "model_version") or n.startswith("proba_")]


def label_sources(labels: Any, key: str, column: str) -> list[Any]:
    """Label sources, oldest first; a mapping key -> label or a pandas Series indexed by key becomes one table."""
    import pyarrow as pa

    if hasattr(labels, "index") and hasattr(labels, "to_numpy") and not hasattr(labels, "columns"):  # a Series
        return [pa.table({key: pa.array(labels.index.to_numpy()), column: pa.array(labels.to_numpy())})]
    if isinstance(labels, Mapping):
        return [pa.table({key: list(labels.keys()), column: list(labels.values())})]
    if isinstance(labels, (pa.Table, pa.RecordBatch)) or _is_path(labels):
        return [labels]
    return list(labels)


def _is_path(item: Any) -> bool:
    import os

    return isinstance(item, (str, os.PathLike)) or (hasattr(item, "open") and hasattr(item, "name"))


def _name(item: Any) -> str:
    return repr(str(item)) if _is_path(item) else f"({type(item).__name__})"


def _batches(data: Any, where: str, columns):
    """Record batches of a Parquet path (read in bounded chunks, only ``columns(names)``), a Table, a
    RecordBatch, or an iterable of these."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(data, pa.RecordBatch):
        yield data
    elif isinstance(data, pa.Table):
        yield from data.to_batches(READ_ROWS)
    elif _is_path(data):
        with (data.open("rb") if hasattr(data, "open") else open(data, "rb")) as handle:
            try:  # no pre-buffering, paged column chunks: memory stays flat in the file's size (core/score.py)
                reader = pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)
                names = reader.schema_arrow.names
                wanted = [n for n in names if n in set(columns(names))]
                yield from reader.iter_batches(READ_ROWS, columns=wanted, use_threads=False)
            except (pa.ArrowInvalid, OSError) as exc:
                raise ValueError(f"{where}: not a readable Parquet file: {exc}") from exc
    else:
        for item in data:
            yield from _batches(item, where, columns)


def _canonical(value: Any) -> str:
    """A class label as text that compares equal across types: 1, 1.0, "1" and "1.0" are all "1"."""
    if isinstance(value, bool):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _epoch(moment: Any) -> float | None:
    """Epoch seconds of a datetime (naive: UTC) or a number; None stays None."""
    import datetime as dt

    if moment is None:
        return None
    if isinstance(moment, dt.datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
    return float(moment)


def _seconds(column, where: str):
    """Epoch seconds of a timestamp or numeric column (naive timestamps: UTC) as float64 numpy; a missing
    time is -inf, older than any given time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type):
        column = pc.divide(column.cast(pa.timestamp("us", column.type.tz)).cast(pa.int64()).cast(pa.float64()), 1e6)
    elif not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise ValueError(f"{where}: label time column has type {column.type}; give timestamps or epoch seconds")
    return pc.fill_null(column.cast(pa.float64()), float("-inf")).to_numpy(zero_copy_only=False)


def bucket_count(predictions: list, labels: list[Any]) -> int:
    """Buckets of about BUCKET_ROWS rows (both sides) when the row counts are known from Parquet footers."""
    import pyarrow.parquet as pq

    rows = 0
    for data in [s.data for s in predictions] + labels:
        if not _is_path(data):
            if hasattr(data, "num_rows"):
                rows += data.num_rows
                continue
            return DEFAULT_BUCKETS
        with (data.open("rb") if hasattr(data, "open") else open(data, "rb")) as handle:
            rows += pq.ParquetFile(handle).metadata.num_rows
    return max(1, min(MAX_BUCKETS, -(-rows // BUCKET_ROWS)))


_P = 0x100000001B3  # odd, so it has an inverse modulo 2**64


def _hash(keys):
    """A well-mixed uint64 hash of each key (int64 or string Arrow array), vectorised, same on both sides."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_integer(keys.type):
        return _mix(keys.to_numpy().view(np.uint64))
    width = np.int64 if pa.types.is_large_string(keys.type) else np.int32
    offsets = np.frombuffer(keys.buffers()[1], dtype=width)[keys.offset:keys.offset + len(keys) + 1].astype(np.int64)
    data = np.frombuffer(keys.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].astype(np.uint64)
    offsets -= offsets[0]
    lengths = np.diff(offsets)
    with np.errstate(over="ignore"):
        if len(keys) and (lengths == lengths[0]).all():  # fixed-width keys: one pass per character position
            rows, h = data.reshape(len(keys), int(lengths[0])), np.zeros(len(keys), dtype=np.uint64)
            for j, power in enumerate(_powers(_P, rows.shape[1])[:-1]):
                h += rows[:, j] * power
        else:  # per key, a difference of prefix sums of data[i] * P**i, shifted back by P**-start
            prefix = np.zeros(len(data) + 1, dtype=np.uint64)
            np.cumsum(data * _powers(_P, len(data))[:-1], out=prefix[1:])
            h = (prefix[offsets[1:]] - prefix[offsets[:-1]]) * _powers(_inverse(_P), len(data))[offsets[:-1]]
        return _mix(h ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


def _inverse(p: int) -> int:
    """The inverse of odd ``p`` modulo 2**64."""
    inverse = p
    for _ in range(6):  # Newton's iteration doubles the correct low bits each time
        inverse = inverse * (2 - p * inverse) % (1 << 64)
    return inverse


def _powers(base: int, n: int):
    """base**0 .. base**n modulo 2**64."""
    import numpy as np

    powers = np.full(n + 1, base, dtype=np.uint64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers, out=powers)


def _mix(x):
    """splitmix64's finaliser: every input bit affects every output bit."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
