"""The one typing rule of every source kind: raw values to typed ones, strictly, and one row per key.

Plain functions, no Airflow import. Scraped text, CSV cells, JSON values, Parquet columns and SQL
results all go through ``coerce`` (one value) or ``type_column`` (a column), with the spec's opt-in
``decimal_separator``, ``thousands_separator`` and ``date_formats``. A value is either read exactly
or refused with a reason, never guessed (docs/ingestion.md, "Values"):

- ``number``/``integer``: the text must be one number (``1e3``, ``0x1F``, ``1_000``, ``0,5`` are
  refused unless a separator option says otherwise), with at most one of the source's
  ``number_affixes`` (currency, unit: ``€``, ``m²``) before and after it; a number is never picked out
  of other text (``call 0612345678``, ``(12)``, ``5-``). Native numbers (Parquet, SQL, JSON) are taken
  as they are when finite (an ``integer`` must be whole and 64-bit).
- ``date``: ISO 8601 (``YYYY-MM-DD``, optionally with a time) or a native date/timestamp; any other
  layout only through a ``date_formats`` entry. ``03/12/2026`` without one is refused, not guessed.

Stored types are the same whatever the source: string -> text, number -> float64, integer -> Int64,
date -> calendar date (Parquet ``date32``). Rows repeating a key follow ``keep_last``.
"""

from __future__ import annotations

import datetime as dt
import functools
import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

ANY_DIGIT = re.compile("[0-9]").search
INT64_MAX = 2**63 - 1  # what an integer column holds in Parquet; larger values would fail the write
ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
                      re.ASCII)
# Layouts offered in an error's hint when they read every sample; never tried unless the spec lists them.
HINT_DATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y",
                     "%Y%m%d", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y")


@dataclass(frozen=True)
class ValueFormat:
    """The spec's opt-in reading options (source.decimal_separator, thousands_separator, date_formats)."""

    decimal: str = "."
    thousands: str = ","
    date_formats: tuple[str, ...] = ()
    affixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, source: Any) -> ValueFormat:
        """The options of a source spec (any kind)."""
        return cls(source.decimal_separator, source.thousands_separator, tuple(source.date_formats),
                   tuple(getattr(source, "number_affixes", ())))

    @property
    def numbers(self) -> NumberFormat:
        return number_format(self.decimal, self.thousands, self.affixes)


DEFAULT_FORMAT = ValueFormat()


def coerce(raw: Any, kind: str, fmt: ValueFormat = DEFAULT_FORMAT) -> Any:
    """The typed value of one raw value: None when empty, else str, float, int or an ISO date text.

    Raises ValueError saying why when the value is not a ``kind``. Dates come back as ``YYYY-MM-DD``
    text (JSON-safe: scraped records are kept in the crawl state); ``stored`` makes them dates.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        return _native(raw, kind)
    text = raw.strip()
    if not text:
        return None
    if kind == "string":
        return text
    if kind == "date":
        return _date(text, fmt.date_formats)
    return fmt.numbers.parse(text, kind)


def _native(raw: Any, kind: str) -> Any:
    """A value a typed format (Parquet, SQL, JSON) already holds, under the same rules as text."""
    if isinstance(raw, float) and raw != raw:  # NaN: the format's null
        return None
    if kind == "string":
        return str(raw)
    if kind == "date":
        return _native_date(raw)
    if isinstance(raw, bool | complex) or type(raw).__name__ == "bool_" or not isinstance(raw, numbers.Number):
        return _bad(str(raw), kind)
    if kind == "integer":
        if isinstance(raw, numbers.Integral):
            return _integer(str(raw), str(int(raw)))
        if raw - raw != 0 or float(raw) % 1:
            raise ValueError(f"{str(raw)[:40]!r} is not an integer")
        return _integer(str(raw), str(int(raw)))
    number = float(raw)
    if number - number != 0:
        raise ValueError(f"{str(raw)[:40]!r} is out of range (not a finite number)")
    return number


def _native_date(raw: Any) -> str:
    """A date or timestamp object's calendar date (a timestamp's own, in its time zone); numbers are refused."""
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    return _bad(repr(raw), "date")


@functools.lru_cache(maxsize=16)
def number_format(decimal: str, thousands: str, affixes: tuple[str, ...] = ()) -> NumberFormat:
    return NumberFormat(decimal, thousands, affixes)


class NumberFormat:
    """Reads a value that is one number in the spec's format, with at most one of the spec's affixes
    (currency, unit) before and one after it. Runs per field of every record: kept lean."""

    __slots__ = ("affixes", "decimal", "full", "groups")

    def __init__(self, decimal: str, thousands: str, affixes: tuple[str, ...] = ()):
        group = "[ \u00a0\u202f]" if thousands == " " else re.escape(thousands)
        integer = f"(?:[0-9]{{1,3}}(?:{group}[0-9]{{3}})+|[0-9]+)" if thousands else "[0-9]+"
        self.full = re.compile(f"[-+\u2212]?{integer}(?:{re.escape(decimal)}[0-9]+)?").fullmatch
        self.groups = (" ", "\u00a0", "\u202f") if thousands == " " else (thousands,) if thousands else ()
        self.decimal = decimal
        # Longest first: "m²" before "m"; compared case-insensitively ("EUR" and "eur").
        self.affixes = tuple(sorted({a.strip() for a in affixes if a.strip()}, key=len, reverse=True))

    def parse(self, text: str, kind: str) -> float | int:
        if text.isdigit() and text.isascii() and len(text) < 16:  # the common bare count: no regex
            return int(text) if kind == "integer" else float(text)
        match = self.full(self.unwrapped(text))
        if match is None:
            return self.refuse(text, kind)
        token = match.group().lstrip("+")
        for sep in self.groups:
            token = token.replace(sep, "")
        if token[0] == "\u2212":
            token = "-" + token[1:]
        if self.decimal != ".":
            token = token.replace(self.decimal, ".")
        if kind == "integer":
            return _integer(text, token)
        number = float(token)
        if number - number != 0:  # inf or nan: float() of 400 digits is inf
            raise ValueError(f"{text[:40]!r} is out of range (not a finite number)")
        return number

    def unwrapped(self, text: str) -> str:
        """``text`` without one leading and one trailing affix of the spec (and the space beside it)."""
        for affix in self.affixes:
            if len(affix) < len(text) and text[:len(affix)].casefold() == affix.casefold():
                text = text[len(affix):].lstrip()
                break
        for affix in self.affixes:
            if len(affix) < len(text) and text[-len(affix):].casefold() == affix.casefold():
                text = text[:-len(affix)].rstrip()
                break
        return text

    def refuse(self, text: str, kind: str) -> None:
        """Why ``text`` is not read: a number with other text around it is never picked out of it
        ("price on request, ref #42" is not 42)."""
        if not ANY_DIGIT(text):
            return _bad(text, kind)
        named = f"source.number_affixes {list(self.affixes)}" if self.affixes else "source.number_affixes (none)"
        raise ValueError(f"{text[:40]!r} is not {'an' if kind == 'integer' else 'a'} {kind}: the value must be "
                         f"one number, with only the currency or unit affixes {named} around it")


def _integer(text: str, token: str) -> int:
    whole, _, fraction = token.partition(".")
    if fraction.strip("0"):
        raise ValueError(f"{text[:40]!r} is not an integer")
    if len(whole.lstrip("-")) > 19 or not -INT64_MAX - 1 <= int(whole) <= INT64_MAX:
        raise ValueError(f"{text[:40]!r} is out of the 64-bit integer range")
    return int(whole)


def _date(text: str, formats: tuple[str, ...]) -> str:
    """``YYYY-MM-DD`` of an ISO 8601 date (or date-time), or of the first spec format that reads it."""
    if len(text) == 10 and text[4] == "-" == text[7] and text.isascii():  # the common case, no regex
        try:
            dt.date.fromisoformat(text)
            return text
        except ValueError:
            raise ValueError(f"{text!r} is not a calendar date") from None
    iso = ISO_DATE.fullmatch(text)
    if iso:
        try:
            return dt.date.fromisoformat(iso.group(1)).isoformat()
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a calendar date") from None
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    which = f"none of source.date_formats {list(formats)} reads it" if formats else "source.date_formats is empty"
    raise ValueError(f"{text[:40]!r} is not an ISO date (YYYY-MM-DD) and {which}: refused, not guessed")


def _bad(text: str, kind: str) -> None:
    raise ValueError(f"{text[:40]!r} is not {'an' if kind == 'integer' else 'a'} {kind}")


def stored(values: Any, kind: str) -> pd.Series:
    """Canonical values (``coerce``'s, None for null) as the column every source kind stores."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if kind == "number":
        return pd.to_numeric(series, errors="raise").astype("float64")
    if kind == "integer":
        return series.astype("Int64")
    if kind == "date":
        return series.map(lambda v: None if v is None or v is pd.NA else
                          v if isinstance(v, dt.date) else dt.date.fromisoformat(v)).astype(object)
    return series.astype(object).where(series.notna(), None)


def stored_frame(records: list[dict[str, Any]], kinds: dict[str, str]) -> pd.DataFrame:
    """Records of canonical values (a crawl's) as the frame every source kind stores, columns in ``kinds``
    order."""
    import pandas as pd

    return pd.DataFrame({name: stored([r.get(name) for r in records], kind) for name, kind in kinds.items()},
                        index=pd.RangeIndex(len(records)))


def type_column(values: pd.Series, kind: str, fmt: ValueFormat = DEFAULT_FORMAT,
                ) -> tuple[pd.Series, dict[int, str]]:
    """(the column typed and stored, reasons by position of the values present that did not type).

    Typed columns (numeric or datetime dtypes, from Parquet or SQL) are checked as whole arrays;
    anything else goes value by value through ``coerce``, each distinct value once.
    """
    import pandas as pd

    values = values.reset_index(drop=True)
    fast = _typed_array(values, kind)
    if fast is not None:
        return fast
    cache: dict[Any, tuple[Any, str | None]] = {}
    typed: list[Any] = []
    reasons: dict[int, str] = {}
    for position, raw in enumerate(values.tolist()):
        if raw is None or raw is pd.NA or raw is pd.NaT:
            typed.append(None)
            continue
        try:
            value, reason = cache[raw]
        except KeyError:
            value, reason = cache.setdefault(raw, _one(raw, kind, fmt))
        except TypeError:  # unhashable (a JSON list or object): not a scalar of any kind
            value, reason = None, f"{str(raw)[:40]!r} is not {'an' if kind == 'integer' else 'a'} {kind}"
        typed.append(value)
        if reason:
            reasons[position] = reason
    return stored(pd.Series(typed, dtype=object), kind), reasons


def _one(raw: Any, kind: str, fmt: ValueFormat) -> tuple[Any, str | None]:
    try:
        return coerce(raw, kind, fmt), None
    except ValueError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one value must never sink its source (OverflowError was one)
        return None, f"cannot read {str(raw)[:40]!r}: {type(exc).__name__}: {exc}"


def _typed_array(values: pd.Series, kind: str) -> tuple[pd.Series, dict[int, str]] | None:
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if kind in ("number", "integer") and pd.api.types.is_numeric_dtype(dtype) \
            and not pd.api.types.is_bool_dtype(dtype):
        if kind == "number":
            numbers_ = values.astype("float64")
            finite = np.isfinite(numbers_.to_numpy(na_value=np.nan))
            bad = values.notna().to_numpy() & ~finite
            return numbers_.where(finite), {int(i): f"{str(float(values.iloc[i]))!r} is out of range (not a finite number)"
                                            for i in np.flatnonzero(bad)}
        if kind == "integer" and pd.api.types.is_integer_dtype(dtype):
            return values.astype("Int64"), {}
        return None  # floats for an integer column: per value, so 2.5 and 1e19 get their own reasons
    if kind == "date" and pd.api.types.is_datetime64_any_dtype(dtype):
        return values.dt.date.astype(object).where(values.notna(), None), {}
    return None


def keep_last(keys: Sequence[Any], fingerprints: Sequence[Any]) -> dict[str, list[int]]:
    """The one de-duplication rule (docs/ingestion.md), as positions: ``kept``, ``keyless``,
    ``superseded`` (an earlier row whose key a later, different row repeats) and ``identical``
    (an exact repeat of a kept row). The last row read of each key wins: files are read oldest
    first and SQL rows in watermark order, so the last is the newest; a crawl's order is fixed
    (depth, then URL, then position in the page). Superseded rows are rejects; identical ones are
    only counted.
    """
    last: dict[Any, int] = {}
    keyless = []
    for position, key in enumerate(keys):
        if _missing(key):
            keyless.append(position)
        else:
            last[key] = position
    kept = sorted(last.values())
    winner = {key: fingerprints[position] for key, position in last.items()}
    superseded, identical = [], []
    keyless_set = set(keyless)
    for position, key in enumerate(keys):
        if position in keyless_set or last[key] == position:
            continue
        (identical if fingerprints[position] == winner[key] else superseded).append(position)
    return {"kept": kept, "keyless": keyless, "superseded": superseded, "identical": identical}


def _missing(key: Any) -> bool:
    if key is None:
        return True
    if isinstance(key, str):
        return not key.strip()
    try:
        return bool(key != key)  # NaN
    except TypeError:  # pandas' NA has no truth value
        return True


def keyless_reason(key: str) -> str:
    return f"record without key {key!r}"


def superseded_reason(key: str, value: Any) -> str:
    return f"duplicate key {key}={value!r} with different values; the last one read is kept"


def hint(kind: str, samples: list[str]) -> str:
    """The spec option that would read ``samples`` (values refused as ``kind``), as the user writes it."""
    texts = [s.strip() for s in samples if isinstance(s, str) and s.strip()][:50]
    if kind == "date":
        fits = [f for f in HINT_DATE_FORMATS if texts and all(_reads(t, f) for t in texts)]
        if len(fits) == 1:
            return f"source.date_formats: ['{fits[0]}']"
        if fits:
            return (f"source.date_formats: ['{fits[0]}'] (these values also fit "
                    f"{', '.join(repr(f) for f in fits[1:])}: list the layout the source writes)")
        return "source.date_formats: the strptime layout these values are written in (e.g. ['%d/%m/%Y'])"
    if kind in ("number", "integer"):
        affixes = _affixes_around(texts)
        for decimal, thousands in ((".", ","), (",", "."), (",", " "), (".", "'"), (".", "")):
            for extra in ((), affixes) if affixes else ((),):
                parser = number_format(decimal, thousands, extra)
                if (decimal, thousands, extra) != (".", ",", ()) and texts \
                        and all(_parses(parser, t, kind) for t in texts):
                    options = ([f"source.decimal_separator: '{decimal}' and source.thousands_separator: "
                                f"'{thousands}'"] if (decimal, thousands) != (".", ",") else [])
                    options += [f"source.number_affixes: {list(extra)} (if that text is a currency or unit)"] \
                        if extra else []
                    return " and ".join(options)
        return "no option reads them: fix the values at the source (one number; no exponent, hex or '_')"
    return "no option applies"


AROUND_NUMBER = re.compile(r"([^0-9]{0,12}?)\s*[-+\u2212]?[0-9](?:[0-9.,' \u00a0\u202f]*[0-9])?\s*([^0-9]{0,12})")


def _affixes_around(texts: list[str]) -> tuple[str, ...]:
    """The short texts before and after the one number in each of ``texts`` (``€ 1,200`` -> ``€``)."""
    found: set[str] = set()
    for text in texts:
        match = AROUND_NUMBER.fullmatch(text)
        if match is None:
            return ()
        found.update(part.strip() for part in match.groups() if part.strip())
    return tuple(sorted(found))


def _reads(text: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(text, fmt)
        return True
    except ValueError:
        return False


def _parses(parser: NumberFormat, text: str, kind: str) -> bool:
    try:
        parser.parse(text, kind)
        return True
    except ValueError:
        return False
