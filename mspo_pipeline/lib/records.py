"""Turn one API response body into a polars frame of its records, losslessly and leanly.

The SPOC body is ~190 MB of JSON holding ~306k records. Decoding it into Python dicts would cost
gigabytes, so msgspec decodes only the envelope down to the records array and keeps each record
as ``msgspec.Raw`` (a slice of the body, not a parsed object); the slices are joined into NDJSON
and parsed natively, each column's type inferred over every row. Two ways, one result:

- Fast: polars infers the schema of 2,000 records spread over the body, and pyarrow reads every
  record against it in parallel, failing on any record that does not fit (see
  ``read_with_sampled_schema``).
- Otherwise: polars infers over every row itself, about twice as slow on the SPOC body.

Types are the JSON ones: integers stay Int64, strings (areas included) stay String, booleans stay
Boolean, nested objects become Structs. Decisions worth knowing:

- A field that is null in every record is kept as a ``Null``-typed column: the API told us
  nothing about its type, and the typed layer casts it like any other.
- Integers and floats mixed in one field are both JSON numbers: polars reads them as Float64.
- Strings and integers mixed in one field are read by polars as String, the integers as their
  digits, which is their original text.
- Any other mixture (a boolean or an object where a number was) makes polars fail; such a field
  becomes a String column holding each value's original JSON text (strings unquoted), found by
  a second, slower pass that only runs when it is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json

from mspo_pipeline.lib.catalog import Endpoint

PREVIEW_BYTES = 200
SCHEMA_SAMPLE = 2_000
"""Records whose inferred schema the fast path checks every record against."""
_FLAT_DTYPES = frozenset({pl.Int64, pl.Float64, pl.String, pl.Boolean, pl.Null})
_ARROW_TEXT = (pa.large_string(), pa.string_view())
_ARROW_BLOCK_BYTES = 16 * 1024 * 1024
"""pyarrow parses blocks of this size in parallel; a record longer than it takes the slow path."""
SHAPE_ADVICE = (
    "If the API changed its response shape, update the endpoint's row in "
    "mspo_pipeline/lib/catalog.py."
)
TRANSIENT_ADVICE = (
    "The API sent an error page or the response was cut short: retry later, and check "
    "MSPO_API_BASE_URL if it keeps happening."
)


class BadResponseError(ValueError):
    """The API answered, but not with the records the catalogue says it sends."""


@dataclass(frozen=True, slots=True)
class ResponseContext:
    """Where a body came from, for error messages a user can act on."""

    endpoint: Endpoint
    url: str
    status: int
    partition: str | None

    def fail(self, problem: str, body: bytes, advice: str = SHAPE_ADVICE) -> BadResponseError:
        preview = body[:PREVIEW_BYTES].decode("utf-8", errors="replace")
        return BadResponseError(
            f"endpoint {self.endpoint.name!r} (partition {self.partition or 'none'}): {problem}. "
            f"URL {self.url}, HTTP {self.status}; the body starts with {preview!r}. {advice}"
        )


@cache
def _envelope_decoder(records_at: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """A decoder that parses only the objects on the way to the records array.

    Each level is a Struct with a single field, so every sibling key (``page_size`` and the like)
    is skipped without being built, and the records arrive as raw slices of the body.
    """
    level: Any = list[msgspec.Raw]
    for depth, key in reversed(list(enumerate(records_at))):
        level = msgspec.defstruct(f"Level{depth}", [(key, level)])
    return msgspec.json.Decoder(level)


def _records(body: bytes, context: ResponseContext) -> list[msgspec.Raw]:
    records_at = context.endpoint.records_at
    try:
        envelope = _envelope_decoder(records_at).decode(body)
    except msgspec.ValidationError as error:  # valid JSON, another shape
        raise context.fail(
            f"the records are not at {context.endpoint.records_path!r} ({error}); "
            f"the body's top-level keys are {_top_keys(body)}",
            body,
        ) from error
    except msgspec.DecodeError as error:
        problem = (
            "the body is an HTML page, not JSON"
            if body.lstrip()[:1] == b"<"
            else f"the body is not valid JSON ({error})"
        )
        raise context.fail(problem, body, TRANSIENT_ADVICE) from error
    records: list[msgspec.Raw] = envelope
    for key in records_at:
        records = getattr(records, key)
    return records


def _top_keys(body: bytes) -> str:
    try:
        top = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except msgspec.MsgspecError:
        return "(none: the top level is not an object)"
    return ", ".join(repr(key) for key in top) or "(none: the object is empty)"


def _check_objects(records: list[msgspec.Raw], context: ResponseContext, body: bytes) -> None:
    for index, record in enumerate(records):
        if memoryview(record)[:1] != b"{":
            raise context.fail(
                f"record {index} at {context.endpoint.records_path!r} is not a JSON object "
                f"(it starts with {bytes(memoryview(record)[:40])!r})",
                body,
            )


def _json_kind(raw: bytes | msgspec.Raw) -> str:
    first = bytes(memoryview(raw)[:1])
    kinds = {b'"': "string", b"t": "boolean", b"f": "boolean", b"n": "null"}
    kinds |= {b"{": "object", b"[": "array"}
    return kinds.get(first, "number")


def _original_text(raw: bytes | msgspec.Raw) -> str | None:
    kind = _json_kind(raw)
    if kind == "null":
        return None
    if kind == "string":
        text: str = msgspec.json.decode(raw, type=str)
        return text
    return bytes(raw).decode("utf-8")


def _mixed_fields(records: list[bytes]) -> list[str]:
    """Fields whose non-null values have more than one JSON kind, in first-seen order."""
    decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
    kinds: dict[str, set[str]] = {}
    for record in records:
        for key, value in decoder.decode(record).items():
            kind = _json_kind(value)
            if kind != "null":
                kinds.setdefault(key, set()).add(kind)
    return [key for key, seen in kinds.items() if len(seen) > 1]


def _original_texts(records: list[bytes], fields: list[str]) -> list[pl.Series]:
    decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
    columns: dict[str, list[str | None]] = {name: [] for name in fields}
    for record in records:
        values = decoder.decode(record)
        for name, column in columns.items():
            raw = values.get(name)
            column.append(None if raw is None else _original_text(raw))
    return [pl.Series(name, column, dtype=pl.String) for name, column in columns.items()]


@dataclass(slots=True)
class _Ndjson:
    """One body's records as NDJSON, with what the parse needs to know about them."""

    lines: bytes
    """Every record, one per line (~190 MB for SPOC: the parse drops it as soon as it can)."""
    sample: bytes
    """``SCHEMA_SAMPLE`` records spread evenly over the body, one per line."""
    first_keys: list[str]
    """The first record's keys, in its order."""


def _joined(records: list[msgspec.Raw], *, body_has_newlines: bool) -> bytes:
    ndjson = b"\n".join(records)  # Raw slices of the body: one copy, nothing parsed
    if body_has_newlines and ndjson.count(b"\n") != len(records) - 1:
        # A pretty-printed body: newlines can only be whitespace between tokens (inside JSON
        # strings they are escaped), so blanking them keeps every record intact on one line.
        ndjson = b"\n".join(bytes(record).replace(b"\n", b" ") for record in records)
    return ndjson


def _ndjson(body: bytes, context: ResponseContext) -> _Ndjson | None:
    """The records as NDJSON (one copy of their bytes); ``None`` for an empty records array.

    Kept apart from the parse so the body is freed before parsing starts: at 306k records the
    body and the NDJSON are ~190 MB each.
    """
    records = _records(body, context)
    if not records:
        return None
    _check_objects(records, context, body)
    step = max(1, len(records) // SCHEMA_SAMPLE)
    newlines = b"\n" in body  # a memchr: far cheaper than counting them in every record
    return _Ndjson(
        lines=_joined(records, body_has_newlines=newlines),
        sample=_joined(records[::step], body_has_newlines=newlines),
        first_keys=list(msgspec.json.decode(records[0], type=dict[str, msgspec.Raw])),
    )


@cache
def _arrow_pool() -> pa.MemoryPool:
    """pyarrow's jemalloc pool, set to hand freed pages back to the OS at once (decay 0).

    polars adopts the parsed buffers and frees them when the raw frame dies; pyarrow's default
    pool (mimalloc) kept ~200 MB more resident through the typed and validated steps of the
    same run. Nothing but this parse allocates from the jemalloc pool.
    """
    try:
        pa.jemalloc_set_decay_ms(0)
        return pa.jemalloc_memory_pool()
    except pa.ArrowNotImplementedError:  # a pyarrow built without jemalloc (Windows wheels)
        return pa.default_memory_pool()


def read_with_sampled_schema(lines: bytes, sample: bytes) -> pa.Table | None:
    """Every record read with the schema inferred from ``sample``, or ``None`` if any disagrees.

    The fast path, about half the time of polars' inference over every row on the SPOC body.
    pyarrow's reader is strict where it matters: a field the sample never had
    (``unexpected_field_behavior="error"``), a value of another JSON kind, a fraction in an
    integer column or a value in an all-null column each fail the read, and the caller infers
    over every row instead. An integer in a float column is read as a float, as inference
    would. So when this returns a table it holds what inference over every row gives.
    Only flat records take this path (nested objects are inferred the slow way).
    """
    try:
        sampled = pl.read_ndjson(sample, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        return None
    if not all(dtype in _FLAT_DTYPES for dtype in sampled.dtypes):
        return None
    schema = pa.schema(
        # 32-bit offsets: a column of one 16 MB block never needs more, and they are half the size
        pa.field(field.name, pa.string()) if field.type in _ARROW_TEXT else field
        for field in sampled.to_arrow().schema
    )
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    try:
        return pa_json.read_json(
            pa.BufferReader(lines),
            read_options=pa_json.ReadOptions(block_size=_ARROW_BLOCK_BYTES),
            parse_options=options,
            memory_pool=_arrow_pool(),
        )
    except pa.ArrowException:  # any failure: polars' own inference is the reference
        return None


def _read_inferring_every_row(lines: bytes) -> pl.DataFrame:
    """polars' inference over every row; fields of conflicting kinds become their text."""
    try:
        return pl.read_ndjson(lines, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        split = lines.split(b"\n")
        mixed = _mixed_fields(split)
        return pl.read_ndjson(
            lines, infer_schema_length=None, schema_overrides=dict.fromkeys(mixed, pl.String)
        ).with_columns(_original_texts(split, mixed))


def _parse(ndjson: _Ndjson) -> pl.DataFrame:
    table = read_with_sampled_schema(ndjson.lines, ndjson.sample)
    if table is None:
        frame = _read_inferring_every_row(ndjson.lines)
    else:
        ndjson.lines = b""  # before polars adopts the table: 190 MB less at the peak
        frame = cast(pl.DataFrame, pl.from_arrow(table))  # a Table always gives a DataFrame
    rest = sorted(set(frame.columns) - set(ndjson.first_keys))
    return frame.select([*ndjson.first_keys, *rest])


def records_frame(body: bytes, context: ResponseContext) -> pl.DataFrame:
    """All records of one response body, every field kept with its JSON type, in API order.

    The first record's keys come first, in its order, then fields it lacked, by name. An empty
    records array is a frame with no rows and no columns.
    """
    ndjson = _ndjson(body, context)
    return _parse(ndjson) if ndjson else pl.DataFrame()


def read_records(
    body_path: Path | str, endpoint: Endpoint, *, url: str, status: int, partition: str | None
) -> pl.DataFrame:
    """Records of the response body saved at ``body_path`` (see ``records_frame``)."""
    context = ResponseContext(endpoint=endpoint, url=url, status=status, partition=partition)
    ndjson = _ndjson(Path(body_path).read_bytes(), context)  # the body dies here
    return _parse(ndjson) if ndjson else pl.DataFrame()
