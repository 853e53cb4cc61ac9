"""The MSPO API emulator: a real HTTP server on 127.0.0.1 serving every catalogue endpoint.

``GET /api/<endpoint path>`` answers like the real API (see ``generator`` for the data): compact
JSON in the documented envelope, ``Content-Length`` always, gzip when the client accepts it.
Query parameters (``page``, ``pageSize``, ``state``) are accepted and ignored. The ``spoc/``
reference endpoints answer 404 unless the request target ends in a literal ``?`` with nothing
after it (``GET /api/spoc/zones?``), which is what the real API demands and what ``requests``
silently drops. Unknown paths answer 404 with a JSON error.

Bodies are cached per (endpoint, date, encoding) for the most recent date, so only the first
request of a day pays for generating the ~190 MB SPOC list.

Control, under a path the real API does not have (JSON in, JSON out):

- ``GET /_emulator``: seed, scale, the date served, pending faults.
- ``POST /_emulator/faults`` ``{"endpoint": "spoc/zones" | "zones" | "*", "fault": "server_error",
  "times": 2, "status": 503}``: queue a fault for the next ``times`` requests to that endpoint
  (the fault names and their parameters are in ``faults.Fault`` and ``faults.PARAMETERS``).
- ``GET /_emulator/faults``: the queue; ``DELETE /_emulator/faults``: empty it.
- ``POST /_emulator/date`` ``{"date": "2026-11-21"}`` pins the date served (``null``: today in
  Asia/Kuala_Lumpur again); ``GET /_emulator/date`` tells it.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final

import msgspec

from mspo_pipeline.emulator import faults as fl
from mspo_pipeline.emulator import generator
from mspo_pipeline.lib.catalog import ENDPOINTS_BY_NAME, ENDPOINTS_BY_PATH, Endpoint
from mspo_pipeline.lib.days import MALAYSIA, today_in_malaysia

API_PREFIX: Final = "/api/"
CONTROL_PREFIX: Final = "/_emulator"
GZIP_LEVEL: Final = 1
"""Fast compression: the full SPOC body (~190 MB) gzips to ~40 MB in about a second."""
CACHED_DATES: Final = 1
"""Bodies kept per endpoint: the date served now (a day change or a pinned date evicts the rest)."""
_SLOW_CHUNKS: Final = 20


def today() -> dt.date:
    """Today where the API lives: a new snapshot starts at midnight in Kuala Lumpur."""
    return today_in_malaysia()


@dataclass(slots=True)
class Response:
    """What to send back, and how badly to deliver it."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    """Seconds to wait before sending the status line."""
    body_delay: float = 0.0
    """Seconds over which the body trickles out."""
    cut_at: int | None = None
    """Send only this many body bytes, then close the connection."""


def _json_response(status: int, payload: Any) -> Response:
    body = json.dumps(payload).encode()
    return Response(status, body, [("Content-Type", "application/json; charset=utf-8")])


def _error(status: int, message: str) -> Response:
    return _json_response(status, {"error": {"status": status, "message": message}})


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, quality = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return quality.strip().replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class Emulator:
    """The emulator's state and request handling, independent of the HTTP plumbing."""

    def __init__(self, *, scale: float, seed: int, date: dt.date | None) -> None:
        self.data = generator.dataset(seed, scale)
        self.faults = fl.FaultBook()
        self.request_lines: list[str] = []
        self._pinned: dt.date | None = None
        self.set_date(date)
        self._bodies: dict[tuple[str, dt.date, bool], bytes] = {}
        self._recent_dates: list[dt.date] = []
        self._locks: dict[tuple[str, dt.date, bool], threading.Lock] = {}
        self._cache_lock = threading.Lock()

    @property
    def date(self) -> dt.date:
        """The date served: pinned, or today in Kuala Lumpur."""
        return self._pinned or today()

    def set_date(self, date: dt.date | None) -> None:
        if date is not None:
            generator.day_index(date)
        self._pinned = date

    def body(self, name: str, date: dt.date, *, gzipped: bool = False) -> bytes:
        """The normal body of endpoint ``name`` on ``date``, generated once and cached."""
        key = (name, date, gzipped)
        with self._cache_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._bodies.get(key)
            if cached is not None:
                return cached
            if gzipped:
                made = _gzip(self.body(name, date))
            else:
                endpoint = ENDPOINTS_BY_NAME[name]
                made = generator.encode(endpoint, self.data.frame(name, date))
            with self._cache_lock:
                self._remember(key, made)
            return made

    def _remember(self, key: tuple[str, dt.date, bool], body: bytes) -> None:
        """Cache ``body``, forgetting dates older than the ``CACHED_DATES`` most recent ones."""
        date = key[1]
        if date in self._recent_dates:
            self._recent_dates.remove(date)
        self._recent_dates.append(date)
        keep = set(self._recent_dates[-CACHED_DATES:])
        self._recent_dates = [d for d in self._recent_dates if d in keep]
        for old in [k for k in self._bodies if k[1] not in keep]:
            del self._bodies[old]
            self._locks.pop(old, None)
        self._bodies[key] = body

    def records(self, name: str, date: dt.date | None = None) -> list[dict[str, Any]]:
        """Ground truth: the records endpoint ``name`` serves (without faults) on ``date``."""
        endpoint = ENDPOINTS_BY_NAME[name]
        document: Any = msgspec.json.decode(self.body(name, date or self.date))
        for key in endpoint.records_at:
            document = document[key]
        return list(document)

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], payload: bytes
    ) -> Response:
        path, has_query, query = target.partition("?")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(method, path, payload)
        if not path.startswith(API_PREFIX):
            return _error(404, f"no route for {path}; the MSPO API lives under {API_PREFIX}")
        endpoint = ENDPOINTS_BY_PATH.get(path[len(API_PREFIX) :])
        if endpoint is None:
            return _error(404, f"Cannot {method} {path}")
        if endpoint.trailing_question_mark and not (has_query and not query):
            return _error(404, f"Cannot {method} {path}{has_query}{query}")
        if method != "GET":
            return _error(405, f"{path} answers GET only")
        gzipped = _accepts_gzip(headers.get("Accept-Encoding", ""))
        try:
            return self._serve(endpoint, gzipped)
        except generator.NotEmulatedError as error:  # a 404 fails at once; a crash was retried
            return _error(404, str(error))

    def _serve(self, endpoint: Endpoint, gzipped: bool) -> Response:
        date = self.date
        injection = self.faults.take(endpoint.name)
        fault = injection.fault if injection else None
        if injection is None or fault in (fl.Fault.SLOW, fl.Fault.CUT_CONNECTION):
            body = self.body(endpoint.name, date, gzipped=gzipped)
        elif fault is fl.Fault.SERVER_ERROR:
            status = int(injection.params["status"])
            return _error(status, f"emulated HTTP {status} on {endpoint.path}")
        elif fault is fl.Fault.RATE_LIMITED:
            response = _error(429, "Too Many Requests")
            response.headers.append(("Retry-After", str(injection.params["retry_after"])))
            return response
        elif fault is fl.Fault.HTML:
            return Response(200, fl.HTML_PAGE, [("Content-Type", "text/html; charset=utf-8")])
        else:
            if fault in fl.RESHAPING:
                frame, records_at = fl.reshape(
                    injection, endpoint, self.data.frame(endpoint.name, date)
                )
                plain = generator.encode(endpoint, frame, records_at)
            else:
                plain = fl.corrupt(injection, self.body(endpoint.name, date))
            body = _gzip(plain) if gzipped else plain
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Vary", "Accept-Encoding")]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        response = Response(200, body, headers)
        if injection is not None and fault is fl.Fault.SLOW:
            response.delay = float(injection.params["delay"])
            response.body_delay = float(injection.params["body_delay"])
        elif injection is not None and fault is fl.Fault.CUT_CONNECTION:
            response.cut_at = int(len(body) * float(injection.params["fraction"]))
        return response

    def status(self) -> dict[str, Any]:
        return {
            "seed": self.data.seed,
            "scale": self.data.scale,
            "date": self.date.isoformat(),
            "date_pinned": self._pinned is not None,
            "faults": self.faults.pending(),
            "endpoints": {e.name: API_PREFIX + e.path for e in ENDPOINTS_BY_NAME.values()},
        }

    def _control(self, method: str, path: str, payload: bytes) -> Response:
        action = path[len(CONTROL_PREFIX) :].strip("/")
        try:
            request: Any = json.loads(payload) if payload.strip() else {}
            match method, action:
                case "GET", "":
                    return _json_response(200, self.status())
                case "GET", "faults":
                    return _json_response(200, {"faults": self.faults.pending()})
                case "POST", "faults":
                    params = {k: v for k, v in request.items() if k not in ("endpoint", "fault")}
                    times = params.pop("times", 1)
                    injection = fl.make_injection(
                        request.get("endpoint", ""), request.get("fault", ""), times, params
                    )
                    self.faults.add(injection)
                    return _json_response(201, {"queued": injection.as_json()})
                case "DELETE", "faults":
                    return _json_response(200, {"cleared": self.faults.clear()})
                case "GET", "date":
                    return _json_response(200, {"date": self.date.isoformat()})
                case "POST", "date":
                    text = request.get("date")
                    self.set_date(None if text is None else dt.date.fromisoformat(text))
                    return _json_response(200, {"date": self.date.isoformat()})
        except (ValueError, AttributeError, TypeError) as error:
            return _error(400, f"{method} {path}: {error}")
        return _error(404, f"no emulator control {method} {path}; see GET {CONTROL_PREFIX}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mspo-emulator"
    server: _Server

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            self.server.emulator.request_lines.append(self.requestline)
        return ok

    def _respond(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        response = self.server.emulator.handle(self.command, self.path, headers, payload)
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _respond

    def _send(self, response: Response) -> None:
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        body = memoryview(response.body)
        if response.cut_at is not None:
            self.wfile.write(body[: response.cut_at])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif response.body_delay:
            step = max(1, -(-len(body) // _SLOW_CHUNKS))
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                time.sleep(response.body_delay / _SLOW_CHUNKS)
        else:
            self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header on the served day: a pinned emulator answers "as of" that date.

        Clients read the server's ``Date`` to know which day's register they got (the real API's
        clock is the authority on "today"), so a pinned date must show there too.
        """
        now = dt.datetime.now(MALAYSIA)
        served = dt.datetime.combine(self.server.emulator.date, now.time(), tzinfo=MALAYSIA)
        return formatdate(served.timestamp(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``request_lines`` keeps what tests need, and the CLI prints its own banner."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class EmulatorServer:
    """The emulator serving in a background thread; a context manager for tests and demos."""

    def __init__(
        self,
        *,
        scale: float = 1.0,
        seed: int = 7,
        date: dt.date | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.emulator = Emulator(scale=scale, seed=seed, date=date)
        self._httpd = _Server((host, port), self.emulator)
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The API base: an endpoint's URL is ``base_url + "/" + endpoint.path``."""
        return self.root_url + API_PREFIX.rstrip("/")

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, name: str) -> str:
        """The URL a client must request for endpoint ``name``, trailing ``?`` included."""
        endpoint = ENDPOINTS_BY_NAME[name]
        return f"{self.base_url}/{endpoint.path}{'?' if endpoint.trailing_question_mark else ''}"

    @property
    def request_lines(self) -> list[str]:
        return self.emulator.request_lines

    @property
    def date(self) -> dt.date:
        return self.emulator.date

    def set_date(self, date: dt.date | None) -> None:
        self.emulator.set_date(date)

    def inject(self, endpoint: str, fault: str, *, times: int = 1, **params: Any) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint`` (name, path or "*")."""
        self.emulator.faults.add(fl.make_injection(endpoint, fault, times, params))

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    def records(self, name: str, date: dt.date | None = None) -> list[dict[str, Any]]:
        return self.emulator.records(name, date)

    def body(self, name: str, date: dt.date | None = None) -> bytes:
        """The exact uncompressed body endpoint ``name`` serves without faults."""
        return self.emulator.body(name, date or self.date)

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def serve(self) -> None:
        """Serve in the calling thread until interrupted, then release the port."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()


class _Stop(BaseException):
    """Raised in the main thread by the signal handlers of ``serve_forever``.

    A ``BaseException``, as ``KeyboardInterrupt`` is: a signal landing while the main thread
    starts a request's handler thread would otherwise be caught by socketserver's
    ``except Exception`` (reported as a request error) and the emulator would keep serving.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def serve_forever(*, host: str, port: int, scale: float, seed: int, date: dt.date | None) -> None:
    """Run the emulator in the foreground (``mspo emulator``) until SIGINT (Ctrl-C) or SIGTERM.

    Both handlers are installed explicitly: a non-interactive shell starts a background job
    (``mspo emulator &`` in a script or CI step) with SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so Ctrl-C/``kill -INT`` would be silently ignored; SIGTERM
    (``kill``, ``docker stop``) would end the process without releasing the port cleanly.
    """
    previous = {
        signum: signal.signal(signum, _raise_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server = EmulatorServer(scale=scale, seed=seed, date=date, host=host, port=port)
        served = f"{date} (pinned)" if date else f"today in {MALAYSIA.key}"
        print(
            f"MSPO emulator at {server.base_url} (seed {seed}, scale {scale}, date {served})\n"
            f"  e.g. curl '{server.url('zones')}'; control: {server.root_url}{CONTROL_PREFIX}\n"
            "  Ctrl-C (SIGINT) or SIGTERM stops it.",
            flush=True,
        )
        server.serve()
    except _Stop as stop:
        print(f"MSPO emulator stopped ({stop}).", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
