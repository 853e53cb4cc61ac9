"""Turn one API response body into a polars frame of its records, losslessly and leanly.

The SPOC body is ~190 MB of JSON holding ~306k records. Decoding it into Python dicts would cost
gigabytes, so msgspec decodes only the envelope down to the records array and keeps each record
as ``msgspec.Raw`` (a slice of the body, not a parsed object); the slices are joined into NDJSON
and polars parses them natively, inferring each column's type over every row.

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
from typing import Any

import msgspec
import polars as pl

from mspo_pipeline.lib.catalog import Endpoint

PREVIEW_BYTES = 200
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


def _ndjson(body: bytes, context: ResponseContext) -> tuple[bytes, list[str]]:
    """The records as NDJSON (one copy of their bytes) and the first record's key order.

    Kept apart from the parse so the body is freed before polars starts: at 306k records the
    body and the NDJSON are ~200 MB each.
    """
    records = _records(body, context)
    if not records:
        return b"", []
    _check_objects(records, context, body)
    first = list(msgspec.json.decode(records[0], type=dict[str, msgspec.Raw]))
    ndjson = b"\n".join(records)  # Raw slices of the body: one copy, nothing parsed
    if ndjson.count(b"\n") != len(records) - 1:
        # A pretty-printed body: newlines can only be whitespace between tokens (inside JSON
        # strings they are escaped), so blanking them keeps every record intact on one line.
        ndjson = b"\n".join(bytes(record).replace(b"\n", b" ") for record in records)
    return ndjson, first


def _parse(ndjson: bytes, first: list[str]) -> pl.DataFrame:
    """Parse NDJSON records, inferring over every row; conflicting fields become their text."""
    try:
        frame = pl.read_ndjson(ndjson, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        lines = ndjson.split(b"\n")
        mixed = _mixed_fields(lines)
        frame = pl.read_ndjson(
            ndjson, infer_schema_length=None, schema_overrides=dict.fromkeys(mixed, pl.String)
        ).with_columns(_original_texts(lines, mixed))
    rest = [name for name in frame.columns if name not in set(first)]
    return frame.select([*first, *rest])


def records_frame(body: bytes, context: ResponseContext) -> pl.DataFrame:
    """All records of one response body, every field kept with its JSON type, in API order.

    The first record's key order comes first, then fields it lacked in the order polars found
    them. An empty records array is a frame with no rows and no columns.
    """
    ndjson, first = _ndjson(body, context)
    return _parse(ndjson, first) if ndjson else pl.DataFrame()


def read_records(
    body_path: Path | str, endpoint: Endpoint, *, url: str, status: int, partition: str | None
) -> pl.DataFrame:
    """Records of the response body saved at ``body_path`` (see ``records_frame``)."""
    context = ResponseContext(endpoint=endpoint, url=url, status=status, partition=partition)
    ndjson, first = _ndjson(Path(body_path).read_bytes(), context)  # the body dies here
    return _parse(ndjson, first) if ndjson else pl.DataFrame()
