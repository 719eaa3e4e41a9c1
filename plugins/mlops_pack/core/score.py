"""Stream a Parquet partition through a model in chunks and write predictions with lineage columns.

Memory stays flat in the number of rows: about three chunks are alive at once (one being read; its
slices, one per predict worker, being predicted; a few slices queued for and in the writer).
The reader neither pre-buffers the file (pyarrow's default, which keeps every row group's bytes and
grows with the file) nor reads a column chunk whole, so a writer's 1M-row groups cost no more than
the pack's own 128k-row ones. The output is assembled in Arrow, not pandas: only the feature
columns are converted for the model, kept columns pass through untouched, and the constant lineage
columns are dictionary-encoded (one value and an index per row), so they cost almost nothing in
memory or on disk. Float columns are written without Parquet's dictionary attempt (it made writing
cost a quarter of predicting, for no bytes saved on values that do not repeat).

Throughput: the calling thread reads (pyarrow decodes without the GIL), one worker thread per CPU
predicts a chunk each with its model's OpenMP limited to one thread, and a writer thread encodes.
On the busy 2-core machine, HistGradientBoosting's own 2-thread OpenMP predict on 200k-row chunks
cost 1.6-1.8x the CPU time of single-threaded predicts of the same chunks (OpenMP threads spin
while waiting for each other at every parallel loop's end); independent single-threaded predicts
on separate chunks never wait for each other (docs/benchmarks.md).
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from mlops_pack.core.errors import MlopsError

_DONE = object()


class ScoringError(MlopsError, RuntimeError):
    """The partition cannot be scored; the message names the file or column."""


def score_parquet(model: Any, source, target, features: list[str], lineage: dict[str, str], *,
                  chunk_rows: int, keep: list[str] | None = None, shadow: Any = None,
                  workers: int | None = None) -> int:
    """Predict every row of Parquet ``source`` into Parquet ``target``; returns the rows written.

    ``lineage`` (model name, version, scoring run id) becomes constant columns of every row; ``keep``
    names input columns copied beside the prediction (the key, the features for drift checks).
    A classifier with ``predict_proba`` adds one ``proba_<class>`` column per class beside its
    label. ``shadow``, a second model (the challenger), is run on the same chunks into
    ``shadow_prediction`` (and ``shadow_proba_<class>``): one read of the data for both models.
    ``target`` appears only when complete (core.storage.atomic_writer). ``workers`` predict threads
    (default: one per CPU available to the process) score separate chunks at once; the model's
    ``predict`` must be safe to call from several threads, as scikit-learn's are.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_pack.core.storage import atomic_writer

    keep = list(dict.fromkeys([*(keep or []), *features]))
    models = [("", model)] + ([("shadow_", shadow)] if shadow is not None else [])
    workers = workers or _cpus()
    with source.open("rb") as src, atomic_writer(target) as dst:
        try:
            # pre_buffer off: with it (pyarrow's default) iter_batches fetches every row group's bytes up
            # front and keeps them, so memory grows with the file (10M rows: ~1 GB just to iterate).
            # buffer_size streams a column chunk page by page instead of reading it whole, so even a
            # writer's 1M-row groups cost a few MB each, not the row group's size.
            reader = pq.ParquetFile(src, pre_buffer=False, buffer_size=READ_BUFFER)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ScoringError(f"{source} is not a readable Parquet file: {exc}") from exc
        missing = [c for c in keep if c not in reader.schema_arrow.names]
        if missing:
            raise ScoringError(f"{source} lacks column(s) {missing} the model needs")
        schema = _output_schema(reader.schema_arrow, keep, lineage, models)

        def score(batch):
            frame = batch.select(features).to_pandas()
            predicted = [column for prefix, m in models for column in _predict(m, frame, prefix)]
            return _with_predictions(batch, predicted, lineage)

        writer = _Writer(dst, schema)
        rows = 0
        try:
            with _single_threaded_libraries(workers), ThreadPoolExecutor(
                    workers, thread_name_prefix="score-predict", initializer=_single_threaded_openmp) as pool:
                pending: deque = deque()
                try:
                    # This thread reads (pyarrow decodes without the GIL) while the workers predict; the
                    # oldest result goes to the writer first, so rows keep their order. At most
                    # ``workers + 1`` slices are being scored and two wait for the writer.
                    for batch in _batches(reader, source, chunk_rows, keep):
                        # One slice per worker: the workers finish a batch together, so none idles
                        # through the last batch (5 batches on 2 workers left one CPU idle a fifth
                        # of the time at 1M rows).
                        step = max(1, -(-batch.num_rows // workers))
                        for start in range(0, batch.num_rows, step):
                            pending.append(pool.submit(score, batch.slice(start, step)))
                            if len(pending) > workers:
                                writer.put(pending.popleft().result())
                        rows += batch.num_rows
                    while pending:
                        writer.put(pending.popleft().result())
                finally:  # a failure: drop the chunks not yet started, let the running ones end
                    for future in pending:
                        future.cancel()
        finally:
            writer.close()
    return rows


READ_BUFFER = 1 << 20


def _batches(reader, source, chunk_rows: int, columns: list[str]):
    """The record batches of ``reader``; a corrupt or truncated file is a ScoringError naming ``source``."""
    import pyarrow as pa

    batches = reader.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=False)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise ScoringError(f"cannot read {source}: {exc}") from exc
        yield batch


def _cpus() -> int:
    """The CPUs this process may use (joblib's count honours cgroup quotas and affinity)."""
    from joblib import cpu_count

    return max(1, cpu_count())


def _single_threaded_openmp() -> None:
    """Run in each predict worker: its OpenMP calls use one thread (the limit is per thread in OpenMP).

    The parallelism comes from the workers, one chunk each, instead of from the model: OpenMP's
    threads wait for each other at the end of every parallel loop and spin while waiting, so beside
    the reading and writing threads (or any other process on the machine) one late thread stalls the
    whole predict. Independent single-threaded predicts on separate chunks never wait for each other.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="openmp")


@contextmanager
def _single_threaded_libraries(workers: int):
    """BLAS thread pools (process-wide, unlike OpenMP's limit) at one thread while several workers predict."""
    if workers == 1:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def _classes(model: Any) -> list | None:
    """The classes of a classifier that gives probabilities (a Pipeline's are its final step's)."""
    if not hasattr(model, "predict_proba"):  # a Pipeline answers for its final step
        return None
    classes = getattr(model, "classes_", None)
    return None if classes is None else list(classes)


def _predict(model: Any, frame, prefix: str) -> list[tuple[str, Any]]:
    """``<prefix>prediction`` (the model's own ``predict``) and, for a classifier, ``<prefix>proba_<class>``."""
    import numpy as np
    import pyarrow as pa

    columns = [(f"{prefix}prediction", pa.array(np.asarray(model.predict(frame))))]
    classes = _classes(model)
    if classes is not None:
        proba = np.ascontiguousarray(np.asarray(model.predict_proba(frame), dtype=np.float64).T)
        columns += [(f"{prefix}proba_{c}", pa.array(proba[i])) for i, c in enumerate(classes)]
    return columns


def _output_schema(source_schema, keep: list[str], lineage: dict[str, str], models: list[tuple[str, Any]]):
    """The planned output schema (used as is when there are no rows; the first batch's otherwise)."""
    import pyarrow as pa

    fields = [source_schema.field(c) for c in keep]
    for prefix, model in models:
        fields.append(pa.field(f"{prefix}prediction", pa.float64()))
        fields += [pa.field(f"{prefix}proba_{c}", pa.float64()) for c in _classes(model) or []]
    fields += [pa.field(name, pa.dictionary(pa.int32(), pa.string())) for name in lineage]
    clashes = sorted({f.name for f in fields if [g.name for g in fields].count(f.name) > 1})
    if clashes:
        raise ScoringError(f"output column(s) {clashes} would appear twice: rename the input column(s)")
    return pa.schema(fields)


def _with_predictions(batch, predicted: list[tuple[str, Any]], lineage: dict[str, str]):
    """The output batch: kept columns as read, the predictions, the lineage as one-value dictionaries."""
    import numpy as np
    import pyarrow as pa

    indices = pa.array(np.zeros(batch.num_rows, dtype=np.int32))
    columns = [*batch.columns, *(array for _, array in predicted)]
    columns += [pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string())) for value in lineage.values()]
    names = [*batch.schema.names, *(name for name, _ in predicted), *lineage]
    return pa.RecordBatch.from_arrays(columns, names=names)


class _Writer:
    """Writes batches to Parquet in a thread, one batch behind; the schema follows the first batch (a
    classifier's string labels) or the planned one when there are no rows (still a readable file)."""

    def __init__(self, sink, schema):
        self.sink, self.schema, self._writer = sink, schema, None
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="score-writer", daemon=True)
        self._thread.start()

    def put(self, batch) -> None:
        self._raise_if_failed()
        self._queue.put(batch)

    def _run(self) -> None:
        try:
            while (batch := self._queue.get()) is not _DONE:
                if self._writer is None:
                    self._writer = _parquet_writer(self.sink, batch.schema)
                self._writer.write_batch(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc
            while self._queue.get() is not _DONE:  # drain so the producer never blocks on a dead writer
                pass

    def close(self) -> None:
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_if_failed()
        (self._writer or _parquet_writer(self.sink, self.schema)).close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ScoringError(f"cannot write predictions: {self._error}") from self._error


def _parquet_writer(sink, schema):
    """A Parquet writer that dictionary-encodes all but the floating-point columns.

    Predictions, probabilities and float features almost never repeat: dictionary-encoding them
    (Parquet's default) hashes values until the dictionary page is full, then falls back to plain
    encoding, so it costs the writer most of its time and saves no bytes. Strings, integers and the
    lineage keep the dictionary, which is what makes repeated values cheap on disk.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    dictionary = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return pq.ParquetWriter(sink, schema, use_dictionary=dictionary)
