"""Turn one API response body into a polars frame of its records, exactly and leanly.

The raw layer is the only copy of the day that will ever exist, so every value of every record
must come back out of the raw Parquet exactly as the API wrote it, whatever the API sends.

The SPOC body is ~190 MB of JSON holding ~306k records. Decoding it into Python dicts would cost
gigabytes, so msgspec decodes only the envelope down to the records array and keeps each record
as ``msgspec.Raw`` (a slice of the body, not a parsed object); the slices are joined into NDJSON
and parsed natively. Two ways, one rule (a column type is used only if it holds every value of
the field unchanged):

- Fast, for a normal day: polars infers the schema of 2,000 records spread over the body, and
  pyarrow reads every record against it, failing on any record that does not fit (see
  ``read_with_sampled_schema``). Integers, strings, booleans and all-null fields are exact as
  read; a Float64 column is not trusted (its text may hold more digits than a float), so a day
  with fractions takes the slow way.
- Exact, for any other day (``_read_exactly``, about 1.7x the fast path's time on SPOC): each
  field's JSON kinds are judged over every record (``_KindScan``), and the field gets the one
  Arrow type that keeps all of its values or, if none does, becomes a **JSON-text column**: a
  String column holding each value's JSON text exactly as sent. There ``"2.4300"`` (a string,
  quotes kept), ``2.4300`` and ``1.5E+2`` stay three different texts; objects, arrays and
  numbers beyond int64 or float64 (``1e400``) are kept the same way.
  ``RawRecords.json_text_fields`` names those columns (the raw file's footer carries the list)
  and ``json_text_value`` decodes a cell.

Decisions worth knowing:

- A field that is null in every record is kept as a ``Null``-typed column: the API told us
  nothing about its type, and the typed layer casts it like any other.
- Integers and fractions mixed in one field are both JSON numbers: Float64, when every value is
  exact as a float (integers up to 2**53, fractions whose shortest float text is the same number).
- A field missing from a record and a field sent as ``null`` are both null in its column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any, cast

import msgspec
import polars as pl
import polars.selectors as cs
import pyarrow as pa
import pyarrow.json as pa_json

from mspo_pipeline.lib.catalog import Endpoint

PREVIEW_BYTES = 200
UTF8_BOM = b"\xef\xbb\xbf"
JSON_TEXT_FIELDS = "json_text_fields"
"""Raw provenance key: a JSON array of the columns that hold JSON text (``RawRecords``)."""
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
    if body.startswith(UTF8_BOM):  # not JSON, but RFC 8259 lets a parser ignore it
        body = body[len(UTF8_BOM) :]
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


# What one JSON value needs of its column; a field's kinds are OR-ed over every record. Plain
# ints, not an IntFlag: the exact path judges every value of the day (~8M on SPOC).
STRING, BOOLEAN, INTEGER, WIDE_INTEGER, FRACTION, TEXT_ONLY = (1 << bit for bit in range(6))
"""INTEGER: exact as Float64 too (|i| <= 2**53); WIDE_INTEGER: an int64 beyond that; FRACTION: a
number with a fraction or exponent that Float64 holds as written; TEXT_ONLY: only its JSON text
keeps it (an object, an array, a number beyond int64 or float64)."""
_INTEGERS = INTEGER | WIDE_INTEGER
_NUMBERS = INTEGER | FRACTION
_FLOAT_RANGE = (1e-300, 1e300)
"""Fractions kept as Float64 only inside this range: a parser's rounding at float64's extremes is
not worth trusting with the only copy; anything outside is kept as JSON text."""
_MAX_EXPONENT = 300
"""The largest decimal exponent, as written, of a number read natively (see ``_FLOAT_RANGE``)."""
_NATIVE_TYPES: dict[int, pa.DataType] = {0: pa.null(), STRING: pa.string(), BOOLEAN: pa.bool_()}
_FIRST_BYTE_KINDS = {
    ord('"'): STRING,
    ord("t"): BOOLEAN,
    ord("f"): BOOLEAN,
    ord("n"): 0,
    ord("{"): TEXT_ONLY,
    ord("["): TEXT_ONLY,
}


def _number_kind(text: bytes) -> int:
    """How a JSON number can be stored without changing its value."""
    if b"." not in text and b"e" not in text and b"E" not in text:
        value = int(text)
        if -(2**53) <= value <= 2**53:
            return INTEGER
        return WIDE_INTEGER if -(2**63) <= value < 2**63 else TEXT_ONLY
    number = float(text)
    written = Decimal(text.decode())
    low, high = _FLOAT_RANGE
    in_range = number == 0 or low < abs(number) < high
    # pyarrow's tokenizer refuses an exponent beyond float64's even on a zero ("0.0E+665").
    readable = abs(written.adjusted()) <= _MAX_EXPONENT
    # Exact when the shortest text of the float is the same number as the text sent: "2.4300" and
    # "1.5E+2" are (2.43, 150.0); a 20-digit fraction is not.
    if in_range and readable and Decimal(repr(number)) == written:
        return FRACTION
    return TEXT_ONLY


def _arrow_type(kinds: int) -> pa.DataType | None:
    """The lossless Arrow type of a field with these kinds, or ``None``: keep its JSON text."""
    if kinds in _NATIVE_TYPES:
        return _NATIVE_TYPES[kinds]
    if kinds & _INTEGERS == kinds:
        return pa.int64()
    if kinds & FRACTION and kinds & _NUMBERS == kinds:
        return pa.float64()
    return None


def _value_kind(value: msgspec.Raw) -> int:
    text = bytes(value)
    kind = _FIRST_BYTE_KINDS.get(text[0])
    return _number_kind(text) if kind is None else kind


def _field_kinds(records: list[msgspec.Raw]) -> dict[str, int]:
    """Every field's kinds over ``records``, judged value by value (for a sample of the day)."""
    decode = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
    kinds: dict[str, int] = {}
    for record in records:
        for name, value in decode(record).items():
            kinds[name] = kinds.get(name, 0) | _value_kind(value)
    return kinds


_CHECKED_TYPES: dict[int, Any] = {
    STRING: str | None,
    BOOLEAN: bool | None,
    INTEGER: Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)] | None,
}
"""Kinds msgspec checks in C: a field of one of these kinds is never looked at in Python."""


def _struct_field_name(name: str) -> bool:
    """Whether msgspec can decode a field of this name into a Struct (it refuses ``\\``, ``"``
    and control characters in renamed fields)."""
    return not any(char in '\\"' or char < " " for char in name)


class _KindScan:
    """Every field's kinds over the whole day, judging in Python only the values that need it.

    Each record is decoded into a Struct whose fields have the types the sample showed; msgspec
    checks those in C. A field the sample left open (fractions, nulls, mixed kinds) is decoded
    as its raw text and judged value by value. A record that does not fit (a new field, a value
    of another kind) widens the Struct: the offending field is judged value by value from then
    on. On a normal SPOC day that is ~0.3M values judged in Python instead of ~8M. A field name
    no Struct can hold sends the rest of the day to a plain judge of every value.
    """

    def __init__(self, sampled: Mapping[str, int]) -> None:
        self.checked = {name: kind for name, kind in sampled.items() if kind in _CHECKED_TYPES}
        self.judged = {name: kind for name, kind in sampled.items() if name not in self.checked}
        self._decode: Callable[[msgspec.Raw], Any] | None = None
        self._build()

    def _build(self) -> None:
        names = [*self.checked, *self.judged]
        if not all(map(_struct_field_name, names)):
            self._decode = None
            return
        attributes = {name: f"f{index}" for index, name in enumerate(names)}
        struct = msgspec.defstruct(
            "Record",
            [(attributes[name], _CHECKED_TYPES[kind], None) for name, kind in self.checked.items()]
            + [(attributes[name], msgspec.Raw, None) for name in self.judged],
            rename={attribute: name for name, attribute in attributes.items()},
            forbid_unknown_fields=True,
        )
        self._decode = msgspec.json.Decoder(struct).decode
        self._judged_attributes = [(name, attributes[name]) for name in self.judged]

    def _widen(self, record: msgspec.Raw) -> None:
        for name, value in msgspec.json.decode(record, type=dict[str, msgspec.Raw]).items():
            kind = _value_kind(value)
            if name in self.checked and kind not in (0, self.checked[name]):
                self.judged[name] = self.checked.pop(name)
            elif name not in self.checked:
                self.judged.setdefault(name, 0)
        self._build()

    def scan(self, records: list[msgspec.Raw]) -> dict[str, int]:
        """Kinds of every field seen, in first-seen order of the sample, then of the day."""
        for index, record in enumerate(records):
            if self._decode is None:
                return self._judge_every_value(records[index:])
            try:
                row = self._decode(record)
            except msgspec.ValidationError:
                self._widen(record)
                if self._decode is None:
                    return self._judge_every_value(records[index:])
                row = self._decode(record)
            for name, attribute in self._judged_attributes:
                value = getattr(row, attribute)
                if value is not None:
                    self.judged[name] |= _value_kind(value)
        return {**self.checked, **self.judged}

    def _judge_every_value(self, records: list[msgspec.Raw]) -> dict[str, int]:
        kinds = {**self.checked, **self.judged}
        for name, kind in _field_kinds(records).items():
            kinds[name] = kinds.get(name, 0) | kind
        return kinds


def _text_columns(records: list[msgspec.Raw], names: Sequence[str]) -> list[pl.Series]:
    """The JSON text of each value of ``names``, as sent (``null`` and absent are null)."""
    get_texts = _struct_texts if all(map(_struct_field_name, names)) else _dict_texts
    columns: list[list[str | None]] = [[] for _ in names]
    for texts in get_texts(records, names):
        for column, text in zip(columns, texts, strict=True):
            column.append(None if text is None or text == b"null" else text.decode("utf-8"))
    return [
        pl.Series(name, column, dtype=pl.String)
        for name, column in zip(names, columns, strict=True)
    ]


def _struct_texts(records: list[msgspec.Raw], names: Sequence[str]) -> Iterator[list[bytes | None]]:
    attributes = [f"f{index}" for index in range(len(names))]
    struct = msgspec.defstruct(
        "TextFields",
        [(attribute, msgspec.Raw, None) for attribute in attributes],
        rename=dict(zip(attributes, names, strict=True)),
    )
    decode = msgspec.json.Decoder(struct).decode
    for record in records:
        row = decode(record)
        yield [
            None if (value := getattr(row, attribute)) is None else bytes(value)
            for attribute in attributes
        ]


def _dict_texts(records: list[msgspec.Raw], names: Sequence[str]) -> Iterator[list[bytes | None]]:
    decode = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
    for record in records:
        values = decode(record)
        yield [None if (value := values.get(name)) is None else bytes(value) for name in names]


def _quoted_lines(records: list[msgspec.Raw], text_fields: frozenset[str]) -> bytes:
    """Every record on one line with the values of ``text_fields`` turned into strings, for a
    day whose numbers pyarrow's tokenizer refuses even in fields it is told to ignore."""
    decode = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
    encode = msgspec.json.Encoder().encode
    lines = []
    for record in records:
        values: dict[str, Any] = decode(record)
        for name in text_fields.intersection(values):
            values[name] = bytes(values[name]).decode("utf-8")
        lines.append(encode(values))
    return b"\n".join(lines)


def _read_native(lines: bytes, schema: pa.Schema) -> pa.Table:
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return pa_json.read_json(
        pa.BufferReader(lines),
        read_options=pa_json.ReadOptions(block_size=_ARROW_BLOCK_BYTES),
        parse_options=options,
        memory_pool=_arrow_pool(),
    )


def _read_exactly(records: list[msgspec.Raw], lines: bytes, context: ResponseContext) -> RawRecords:
    """The exact path: every field's kinds judged over the day, then each field read as the one
    type that keeps all its values, or as JSON text (mixed kinds, objects, arrays, numbers beyond
    int64 or float64), so that a string stays distinguishable from a number."""
    step = max(1, len(records) // SCHEMA_SAMPLE)
    kinds = _KindScan(_field_kinds(records[::step])).scan(records)
    types = {name: _arrow_type(kind) for name, kind in kinds.items()}
    text_fields = [name for name, arrow_type in types.items() if arrow_type is None]
    native = pa.schema(
        pa.field(name, arrow_type) for name, arrow_type in types.items() if arrow_type is not None
    )
    try:
        table = _read_native(lines, native)
    except pa.ArrowException:  # e.g. 1e400 in a JSON-text field: its tokenizer refuses it
        try:
            table = _read_native(_quoted_lines(records, frozenset(text_fields)), native)
        except pa.ArrowException as error:  # every value was judged to fit: a defect of ours
            raise context.fail(
                f"the exact parse failed ({error}); the body is valid JSON and should have been "
                "kept: please report this with the body",
                b"",
            ) from error
    frame = _adopt(table)
    if text_fields:
        frame = frame.with_columns(_text_columns(records, text_fields))
    return RawRecords(frame.select(cs.by_name(list(kinds))), tuple(text_fields))


def json_text_fields(provenance: Mapping[str, str]) -> tuple[str, ...]:
    """The JSON-text columns a raw file's provenance names (none for files that predate them)."""
    return tuple(json.loads(provenance.get(JSON_TEXT_FIELDS) or "[]"))


def json_text_value(text: str | None) -> Any:
    """The value a JSON-text cell holds (``None`` stays ``None``), fractions as ``Decimal`` so
    that no digit is lost: the inverse of the raw layer's JSON-text columns."""
    return None if text is None else json.loads(text, parse_float=Decimal)


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


def _adopt(table: pa.Table) -> pl.DataFrame:
    """The table as a polars frame without copying, its field names exactly as sent
    (``pl.from_arrow`` renames an empty name to ``column_<i>``)."""
    frame = cast(pl.DataFrame, pl.from_arrow(table))  # a Table always gives a DataFrame
    frame.columns = table.column_names
    return frame


@dataclass(frozen=True, slots=True)
class RawRecords:
    """One response's records as a frame, and which of its columns hold JSON text."""

    frame: pl.DataFrame
    json_text_fields: tuple[str, ...] = ()
    """Columns holding each value's JSON text as sent, because no one column type keeps every
    value of the field unchanged; decode a cell with ``json_text_value``."""


def _parse(ndjson: _Ndjson, context: ResponseContext, body: Callable[[], bytes]) -> RawRecords:
    """The fast path when it is exact, else the slow one (which reads ``body()`` again: the
    fast path runs without the body in memory)."""
    table = read_with_sampled_schema(ndjson.lines, ndjson.sample)
    if table is not None and pa.float64() not in table.schema.types:
        ndjson.lines = b""  # before polars adopts the table: 190 MB less at the peak
        parsed = RawRecords(_adopt(table))
    else:  # a record the sample did not foresee, or fractions whose text must be checked
        del table
        parsed = _read_exactly(_records(body(), context), ndjson.lines, context)
    rest = sorted(set(parsed.frame.columns) - set(ndjson.first_keys))
    # Field names are the API's: by name exactly, as ``select("*")`` would mean every column.
    in_order = cs.by_name(*ndjson.first_keys, *rest)
    return RawRecords(parsed.frame.select(in_order), parsed.json_text_fields)


def records_frame(body: bytes, context: ResponseContext) -> RawRecords:
    """All records of one response body, every value kept exactly, in API order.

    The first record's keys come first, in its order, then fields it lacked, by name. An empty
    records array is a frame with no rows and no columns.
    """
    ndjson = _ndjson(body, context)
    return _parse(ndjson, context, lambda: body) if ndjson else RawRecords(pl.DataFrame())


def read_records(
    body_path: Path | str, endpoint: Endpoint, *, url: str, status: int, partition: str | None
) -> RawRecords:
    """Records of the response body saved at ``body_path`` (see ``records_frame``)."""
    context = ResponseContext(endpoint=endpoint, url=url, status=status, partition=partition)
    body = Path(body_path)
    ndjson = _ndjson(body.read_bytes(), context)  # the body dies here
    return _parse(ndjson, context, body.read_bytes) if ndjson else RawRecords(pl.DataFrame())
