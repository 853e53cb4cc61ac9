"""Faults the emulator injects on request, so clients are tested against what really goes wrong.

A test (or an out-of-process client, through ``POST /_emulator/faults``) queues a fault for one
endpoint, or ``"*"`` for all of them, for the next ``times`` requests. Faults come in three
families, applied in this order by the server:

- what the records look like (``empty``, ``missing_field``, ``extra_field``, ``type_change``,
  ``wrong_key``): the snapshot is reshaped, then encoded as usual;
- what the document looks like (``truncated_json``, ``malformed_json``, ``html``, ``server_error``,
  ``rate_limited``): a different status or body replaces the normal one;
- how the bytes travel (``slow``, ``cut_connection``): same response, delivered badly.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import polars as pl

from mspo_pipeline.lib.catalog import ENDPOINTS_BY_NAME, ENDPOINTS_BY_PATH, Endpoint


class Fault(StrEnum):
    SERVER_ERROR = "server_error"
    """An HTTP error status (``status``: 500, 502, 503...) with a small JSON body."""
    RATE_LIMITED = "rate_limited"
    """429 with a ``Retry-After`` of ``retry_after`` seconds."""
    SLOW = "slow"
    """``delay`` seconds before the headers, then the body spread over ``body_delay`` seconds."""
    CUT_CONNECTION = "cut_connection"
    """Full ``Content-Length`` promised, ``fraction`` of the body sent, connection closed."""
    TRUNCATED_JSON = "truncated_json"
    """A ``fraction`` of the document, with a ``Content-Length`` that matches the cut body."""
    MALFORMED_JSON = "malformed_json"
    """A complete document with a syntax error (a trailing comma before the last brace)."""
    HTML = "html"
    """A maintenance page as ``text/html`` with status 200, as a proxy in front of an API sends."""
    EMPTY = "empty"
    """The usual envelope with an empty records list."""
    MISSING_FIELD = "missing_field"
    """``field`` dropped from every record (default: the second catalogue field)."""
    EXTRA_FIELD = "extra_field"
    """A new ``field`` (default ``new_field``) with ``value`` appended to every record."""
    TYPE_CHANGE = "type_change"
    """``field`` (default ``stateId``) sent as a string if it is a number, else as a number."""
    WRONG_KEY = "wrong_key"
    """Records under ``records_at`` (dotted, e.g. ``data.data``) instead of the catalogue's."""


PARAMETERS: Final[Mapping[Fault, Mapping[str, Any]]] = MappingProxyType(
    {
        Fault.SERVER_ERROR: {"status": 500},
        Fault.RATE_LIMITED: {"retry_after": 1},
        Fault.SLOW: {"delay": 1.0, "body_delay": 0.0},
        Fault.CUT_CONNECTION: {"fraction": 0.5},
        Fault.TRUNCATED_JSON: {"fraction": 0.5},
        Fault.MALFORMED_JSON: {},
        Fault.HTML: {},
        Fault.EMPTY: {},
        Fault.MISSING_FIELD: {"field": None},
        Fault.EXTRA_FIELD: {"field": "new_field", "value": "emulated"},
        Fault.TYPE_CHANGE: {"field": None},
        Fault.WRONG_KEY: {"records_at": None},
    }
)
"""Each fault's parameters and their defaults (None: chosen per endpoint)."""

RESHAPING: Final = frozenset(
    {Fault.EMPTY, Fault.MISSING_FIELD, Fault.EXTRA_FIELD, Fault.TYPE_CHANGE, Fault.WRONG_KEY}
)
ALL_ENDPOINTS: Final = "*"

HTML_PAGE: Final = b"""<!DOCTYPE html>
<html><head><title>503 Service Temporarily Unavailable</title></head>
<body><h1>Scheduled maintenance</h1>
<p>The MSPO Trace portal is undergoing maintenance. Please try again later.</p>
</body></html>
"""

_OTHER_RECORDS_KEY: Final = MappingProxyType(
    {("data", "results"): "data.data", ("data", "data"): "data.results", ("data",): "data.results"}
)


@dataclass(slots=True)
class Injection:
    """One queued fault: which endpoint, what, with which parameters, how many more times."""

    endpoint: str
    fault: Fault
    params: Mapping[str, Any]
    remaining: int

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "fault": str(self.fault),
            "times": self.remaining,
            **self.params,
        }


def resolve_endpoint(name_or_path: str) -> str:
    """Catalogue name for an endpoint given by name (``states``) or path (``references/states``)."""
    if name_or_path == ALL_ENDPOINTS or name_or_path in ENDPOINTS_BY_NAME:
        return name_or_path
    endpoint = ENDPOINTS_BY_PATH.get(name_or_path.strip("/?"))
    if endpoint is None:
        known = ", ".join(sorted(ENDPOINTS_BY_NAME))
        raise ValueError(
            f"no endpoint {name_or_path!r} to inject a fault into: use a catalogue name "
            f"({known}), its path (e.g. references/states) or {ALL_ENDPOINTS!r} for all"
        )
    return endpoint.name


def make_injection(endpoint: str, fault: str, times: int, params: Mapping[str, Any]) -> Injection:
    """A validated ``Injection``, or a ``ValueError`` naming what is wrong and what is allowed."""
    try:
        kind = Fault(fault)
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {fault!r}; the emulator knows: {known}") from None
    allowed = PARAMETERS[kind]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(
            f"fault {kind} takes {sorted(allowed) or 'no parameters'}, not {sorted(unknown)}"
        )
    if not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be a positive integer (requests to affect), got {times!r}")
    return Injection(resolve_endpoint(endpoint), kind, {**allowed, **params}, times)


class FaultBook:
    """The queue of pending faults, shared by the server threads."""

    def __init__(self) -> None:
        self._queue: list[Injection] = []
        self._lock = threading.Lock()

    def add(self, injection: Injection) -> None:
        with self._lock:
            self._queue.append(injection)

    def take(self, endpoint_name: str) -> Injection | None:
        """The oldest fault queued for this endpoint (or for all), counted as used once."""
        with self._lock:
            for injection in self._queue:
                if injection.endpoint in (endpoint_name, ALL_ENDPOINTS):
                    injection.remaining -= 1
                    if injection.remaining == 0:
                        self._queue.remove(injection)
                    return injection
            return None

    def clear(self) -> int:
        with self._lock:
            count = len(self._queue)
            self._queue.clear()
            return count

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [injection.as_json() for injection in self._queue]


def reshape(
    injection: Injection, endpoint: Endpoint, frame: pl.DataFrame
) -> tuple[pl.DataFrame, Sequence[str]]:
    """The records (and where they sit) as a record-level fault would have the API send them."""
    params = injection.params
    records_at: Sequence[str] = endpoint.records_at
    match injection.fault:
        case Fault.EMPTY:
            frame = frame.head(0)
        case Fault.MISSING_FIELD:
            frame = frame.drop(params["field"] or endpoint.fields[1])
        case Fault.EXTRA_FIELD:
            frame = frame.with_columns(pl.lit(params["value"]).alias(params["field"]))
        case Fault.TYPE_CHANGE:
            field = params["field"] or (
                "stateId" if "stateId" in frame.columns else frame.columns[0]
            )
            changed = (
                pl.col(field).cast(pl.Float64, strict=False)
                if frame.schema[field] == pl.String
                else pl.col(field).cast(pl.String)
            )
            frame = frame.with_columns(changed)
        case Fault.WRONG_KEY:
            records_at = (params["records_at"] or _OTHER_RECORDS_KEY[endpoint.records_at]).split(
                "."
            )
    return frame, records_at


def corrupt(injection: Injection, body: bytes) -> bytes:
    """The body a document-level fault sends in place of ``body``."""
    match injection.fault:
        case Fault.TRUNCATED_JSON:
            return body[: int(len(body) * float(injection.params["fraction"]))]
        case Fault.MALFORMED_JSON:
            return body[:-1] + b",}"
    return body
