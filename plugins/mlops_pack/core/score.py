"""Stream a Parquet partition through a model in chunks and write predictions with lineage columns.

Memory stays flat in the number of rows: at most a few record batches are alive at once (one being
read ahead, one being predicted, one being written). The output is assembled in Arrow, not pandas:
only the feature columns are converted for the model, kept columns pass through untouched, and the
constant lineage columns are dictionary-encoded (one value and an index per row), so they cost
almost nothing in memory or on disk. Reading the next batch and writing the previous one run in
threads beside the model's predict (pyarrow releases the GIL while decoding and encoding).
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

_DONE = object()


class ScoringError(RuntimeError):
    """The partition cannot be scored; the message names the file or column."""


def score_parquet(model: Any, source, target, features: list[str], lineage: dict[str, str], *,
                  chunk_rows: int, keep: list[str] | None = None, shadow: Any = None) -> int:
    """Predict every row of Parquet ``source`` into Parquet ``target``; returns the rows written.

    ``lineage`` (model name, version, scoring run id) becomes constant columns of every row; ``keep``
    names input columns copied beside the prediction (the key, the features for drift checks).
    A classifier with ``predict_proba`` adds one ``proba_<class>`` column per class beside its
    label. ``shadow``, a second model (the challenger), is run on the same chunks into
    ``shadow_prediction`` (and ``shadow_proba_<class>``): one read of the data for both models.
    ``target`` appears only when complete (core.storage.atomic_writer).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_pack.core.storage import atomic_writer

    keep = list(dict.fromkeys([*(keep or []), *features]))
    models = [("", model)] + ([("shadow_", shadow)] if shadow is not None else [])
    with source.open("rb") as src, atomic_writer(target) as dst:
        try:
            reader = pq.ParquetFile(src)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ScoringError(f"{source} is not a readable Parquet file: {exc}") from exc
        missing = [c for c in keep if c not in reader.schema_arrow.names]
        if missing:
            raise ScoringError(f"{source} lacks column(s) {missing} the model needs")
        schema = _output_schema(reader.schema_arrow, keep, lineage, models)
        writer = _Writer(dst, schema)
        rows = 0
        try:
            for batch in _read_ahead(reader.iter_batches(batch_size=chunk_rows, columns=keep)):
                frame = batch.select(features).to_pandas()
                predicted = [column for prefix, m in models for column in _predict(m, frame, prefix)]
                writer.put(_with_predictions(batch, predicted, lineage))
                rows += batch.num_rows
        finally:
            writer.close()
    return rows


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
        import pyarrow.parquet as pq

        try:
            while (batch := self._queue.get()) is not _DONE:
                if self._writer is None:
                    self._writer = pq.ParquetWriter(self.sink, batch.schema)
                self._writer.write_batch(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc
            while self._queue.get() is not _DONE:  # drain so the producer never blocks on a dead writer
                pass

    def close(self) -> None:
        import pyarrow.parquet as pq

        self._queue.put(_DONE)
        self._thread.join()
        self._raise_if_failed()
        (self._writer or pq.ParquetWriter(self.sink, self.schema)).close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ScoringError(f"cannot write predictions: {self._error}") from self._error


def _read_ahead(batches: Iterator, depth: int = 1) -> Iterator:
    """``batches``, with the next one decoded in a thread while the caller works on the current one."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    break
                buffer.put(batch)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)
        finally:
            buffer.put(_DONE)

    thread = threading.Thread(target=produce, name="score-reader", daemon=True)
    thread.start()
    try:
        while (batch := buffer.get()) is not _DONE:
            yield batch
    finally:  # the caller failed or stopped early: let the reader finish its batch and exit
        stop.set()
        while thread.is_alive():
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
    if failure:
        raise ScoringError(f"cannot read the partition: {failure[0]}") from failure[0]
