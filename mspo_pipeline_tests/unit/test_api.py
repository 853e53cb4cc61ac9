"""The API client against scripted HTTP servers on 127.0.0.1 that record the raw request line.

The same servers stand behind the real raw asset for what only a scripted server can do (a 404,
a plain-HTTP port spoken to with TLS, a body counted byte by byte).
"""

import datetime as dt
import gzip
import http.server
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest

import mspo_pipeline
from mspo_pipeline.lib import api, catalog
from mspo_pipeline.lib.api import (
    MspoApiError,
    MspoClient,
    ResponseHead,
    endpoint_url,
    retry_after_seconds,
)
from mspo_pipeline.lib.late_capture import CaptureGate, LateCaptureRefusedError, LatePolicy
from mspo_pipeline.lib.resources import MspoApi
from mspo_pipeline_tests import pipeline

Action = Callable[[http.server.BaseHTTPRequestHandler], None]


def reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> Action:
    def act(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return act


def cut(sent: bytes, declared: int) -> Action:
    """Announce ``declared`` bytes, send ``sent``, then drop the connection."""

    def act(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(sent)
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    return act


def chunked(parts: list[bytes], headers: dict[str, str], *, finish: bool = True) -> Action:
    """Send ``parts`` with chunked transfer coding (no Content-Length); ``finish=False`` drops
    the connection before the closing zero-length chunk."""

    def act(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        for name, value in {"Transfer-Encoding": "chunked", **headers}.items():
            handler.send_header(name, value)
        handler.end_headers()
        for part in parts:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        if finish:
            handler.wfile.write(b"0\r\n\r\n")
            return
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    return act


def reply_with_only(status: int, body: bytes, headers: dict[str, str]) -> Action:
    """Like ``reply``, but with no header of http.server's own (it adds ``Date: ...``)."""

    def act(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response_only(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return act


@dataclass
class Sent:
    """How much of a body the server wrote before the client hung up."""

    body_bytes: int = 0
    finished: threading.Event = field(default_factory=threading.Event)


def large_body(size: int, headers: dict[str, str], sent: Sent) -> Action:
    """``size`` zero bytes in 64 KB writes, counted, until done or the client closes."""

    def act(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response_only(200)
        for name, value in {"Content-Length": str(size), **headers}.items():
            handler.send_header(name, value)
        handler.end_headers()
        chunk = bytes(64 * 1024)
        try:
            while sent.body_bytes < size:
                handler.wfile.write(chunk)
                sent.body_bytes += len(chunk)
        except OSError:  # the client closed the connection
            handler.close_connection = True
        finally:
            sent.finished.set()

    return act


def http_date(when: dt.datetime) -> str:
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


def stall(seconds: float) -> Action:
    def act(handler: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        reply(200, b"late")(handler)

    return act


@dataclass
class Server:
    base_url: str
    script: list[Action]
    request_lines: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(base_url="", script=[])

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.request_lines.append(self.requestline)
            state.headers.append(dict(self.headers))
            action = state.script.pop(0) if len(state.script) > 1 else state.script[0]
            action(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/api"
    yield state
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Recorder:
    """A logger that keeps what it was told, shaped like Dagster's ``context.log``."""

    infos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def info(self, msg: str) -> None:
        self.infos.append(msg)

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)


@dataclass
class Sleeps:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(server: Server, tmp_path: Path, **options: object) -> tuple[MspoClient, Recorder]:
    log = Recorder()
    settings: dict[str, object] = {
        "max_attempts": 4,
        "backoff_base_s": 0.5,
        "backoff_max_s": 2.0,
        "read_timeout_s": 5.0,
        "temp_dir": str(tmp_path),
        "log": log,
        "sleep": Sleeps(),
    }
    settings.update(options)
    return MspoClient(server.base_url, **settings), log  # type: ignore[arg-type]


BODY = b'{"data": [{"zoneId": 1, "zone": "Zon Utara 1"}]}'
ZONES = catalog.endpoint("zones")
SPOC = catalog.endpoint("spoc_smallholders")
STATES = catalog.endpoint("states")


def test_trailing_question_mark_reaches_the_request_line(server: Server, tmp_path: Path) -> None:
    server.script = [reply(200, BODY)]
    client, _ = client_for(server, tmp_path)
    with client, client.fetch(ZONES) as result:
        assert result.body_path.read_bytes() == BODY
    assert server.request_lines == ["GET /api/spoc/zones? HTTP/1.1"]
    assert result.url == f"{server.base_url}/spoc/zones?"
    assert not result.body_path.exists()


def test_params_and_plain_paths(server: Server, tmp_path: Path) -> None:
    server.script = [reply(200, BODY)]
    client, _ = client_for(server, tmp_path)
    with client:
        client.fetch(SPOC).delete()
        client.fetch(STATES).delete()
    assert server.request_lines == [
        "GET /api/spoc/get-spoc-list-public?page=1&pageSize=10 HTTP/1.1",
        "GET /api/references/states HTTP/1.1",
    ]
    user_agent = server.headers[0]["User-Agent"]
    assert user_agent.startswith(f"mspo-pipeline/{mspo_pipeline.__version__} (+https://")


def test_gzip_body_is_decoded_to_the_file_with_progress(server: Server, tmp_path: Path) -> None:
    rng = random.Random(3)  # random digits: ~6 MB that stay ~3 MB gzipped, so several chunks
    records = (b'{"a": %d}' % rng.randrange(10**12) for _ in range(400_000))
    body = b'{"data": {"results": [' + b",".join(records) + b"]}}"
    server.script = [reply(200, gzip.compress(body), {"Content-Encoding": "gzip"})]
    client, log = client_for(server, tmp_path, progress_every_bytes=1024 * 1024)
    with client, client.fetch(SPOC) as result:
        assert result.body_path.read_bytes() == body
        assert (result.status, result.bytes_received, result.attempts) == (200, len(body), 1)
        assert result.headers["Content-Encoding"] == "gzip"
    assert server.headers[0]["Accept-Encoding"] == "gzip"
    progress = [line for line in log.infos if "MB received in" in line]
    # At most one report per MB of decoded body, and at least one per 1 MB chunk on the wire.
    assert len(body) // (1024 * 1024) >= len(progress) >= 2
    reported = [float(line.split(": ")[1].split(" MB")[0]) for line in progress]
    assert reported == sorted(reported)
    assert "MB/s" in progress[0]


def test_gzip_body_of_several_members_is_decoded_whole(server: Server, tmp_path: Path) -> None:
    halves = (BODY[: len(BODY) // 2], BODY[len(BODY) // 2 :])
    wire = b"".join(gzip.compress(half) for half in halves)  # RFC 1952 allows members in a row
    server.script = [reply(200, wire, {"Content-Encoding": "gzip"})]
    client, _ = client_for(server, tmp_path)
    with client, client.fetch(ZONES) as result:
        assert result.body_path.read_bytes() == BODY


def test_chunked_gzip_body_is_decoded_and_a_missing_last_chunk_retried(
    server: Server, tmp_path: Path
) -> None:
    wire = gzip.compress(BODY)
    parts = [wire[:10], wire[10:25], wire[25:]]
    gzipped = {"Content-Encoding": "gzip"}
    server.script = [chunked(parts, gzipped, finish=False), chunked(parts, gzipped)]
    client, log = client_for(server, tmp_path)
    with client, client.fetch(ZONES) as result:
        assert (result.attempts, result.body_path.read_bytes()) == (2, BODY)
    assert "cut short" in log.warnings[0]


def test_gzip_bomb_is_decoded_in_bounded_pieces() -> None:
    plain = bytes(64 * 1024 * 1024)  # 64 MB of zeros: ~64 KB on the wire
    wire = gzip.compress(plain)
    decoder = api._GzipBody()
    pieces = list(decoder.decode(wire))
    assert max(len(piece) for piece in pieces) <= api._DECODED_PIECE
    assert b"".join(pieces) + decoder.finish() == plain


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 10**9])
def test_gzip_decoding_does_not_depend_on_how_the_wire_is_cut(chunk_size: int) -> None:
    rng = random.Random(chunk_size)
    plain = b"".join(b"%d," % rng.randrange(10**6) for _ in range(20_000)) + bytes(300_000)
    wire = gzip.compress(plain[:70_000]) + gzip.compress(plain[70_000:])
    decoder = api._GzipBody()
    out = [
        piece
        for start in range(0, len(wire), chunk_size)
        for piece in decoder.decode(wire[start : start + chunk_size])
    ]
    assert b"".join(out) + decoder.finish() == plain


def test_gzip_stream_ending_mid_member_is_retried_as_cut_short(
    server: Server, tmp_path: Path
) -> None:
    """The HTTP body is whole (its Content-Length matches), but the gzip stream inside stops."""
    wire = gzip.compress(BODY)
    server.script = [reply(200, wire[:-8], {"Content-Encoding": "gzip"}), reply(200, BODY)]
    client, log = client_for(server, tmp_path)
    with client, client.fetch(ZONES) as result:
        assert (result.attempts, result.body_path.read_bytes()) == (2, BODY)
    assert "cut short" in log.warnings[0] and "mid-member" in log.warnings[0]


def test_corrupt_gzip_is_retried_then_reported(server: Server, tmp_path: Path) -> None:
    server.script = [reply(200, b"\x1f\x8b" + b"garbage" * 10, {"Content-Encoding": "gzip"})]
    client, _ = client_for(server, tmp_path, max_attempts=2)
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(ZONES)
    assert "bad gzip data" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_an_encoding_that_was_not_asked_for_fails_at_once(server: Server, tmp_path: Path) -> None:
    server.script = [reply(200, b"\x00\x01", {"Content-Encoding": "br"})]
    client, _ = client_for(server, tmp_path)
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(ZONES)
    assert len(server.request_lines) == 1
    assert "'br'" in str(raised.value) and "only gzip" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_retries_5xx_and_429_honouring_capped_retry_after(server: Server, tmp_path: Path) -> None:
    server.script = [
        reply(503, b"busy"),
        reply(429, b"slow down", {"Retry-After": "7"}),
        reply(429, b"slow down", {"Retry-After": "1"}),
        reply(200, BODY),
    ]
    sleeps = Sleeps()
    client, log = client_for(server, tmp_path, sleep=sleeps, retry_after_max_s=5.0)
    with client, client.fetch(ZONES) as result:
        assert result.attempts == 4
        assert result.body_path.read_bytes() == BODY
    assert 0.0 <= sleeps.waits[0] <= 0.5  # full jitter under the first ceiling
    assert sleeps.waits[1:] == [5.0, 1.0]
    assert len(log.warnings) == 3
    assert "zones: attempt 2/4 failed (429" in log.warnings[1]
    assert "retrying in 5.0 s" in log.warnings[1]


def test_connection_cut_mid_body_is_retried_and_leaves_no_temp_file(
    server: Server, tmp_path: Path
) -> None:
    server.script = [cut(BODY[:10], declared=len(BODY)), reply(200, BODY)]
    client, log = client_for(server, tmp_path)
    with client:
        result = client.fetch(ZONES)
    assert result.attempts == 2
    assert "cut short" in log.warnings[0]
    assert list(tmp_path.iterdir()) == [result.body_path]
    result.delete()


def test_read_timeout_is_retried(server: Server, tmp_path: Path) -> None:
    server.script = [stall(1.0), reply(200, BODY)]
    client, log = client_for(server, tmp_path, read_timeout_s=0.2)
    with client, client.fetch(ZONES) as result:
        assert result.attempts == 2
    assert "Timeout" in log.warnings[0]


def test_client_error_fails_at_once_with_an_actionable_message(
    server: Server, tmp_path: Path
) -> None:
    server.script = [reply(404, b"<html>Not Found</html>")]
    client, _ = client_for(server, tmp_path)
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(ZONES, partition="2026-11-30")
    message = str(raised.value)
    url = f"{server.base_url}/spoc/zones?"
    assert len(server.request_lines) == 1
    assert message.startswith("endpoint 'zones' (partition 2026-11-30): ")
    assert f"URL {url}, HTTP 404; the body starts with '<html>Not Found</html>'." in message
    assert "MSPO_API_BASE_URL" in message
    error = raised.value
    assert (error.endpoint, error.partition, error.url, error.status) == (
        "zones",
        "2026-11-30",
        url,
        404,
    )
    assert list(tmp_path.iterdir()) == []


def test_gives_up_after_max_attempts(server: Server, tmp_path: Path) -> None:
    server.script = [reply(500, b"x" * 1000)]
    client, _ = client_for(server, tmp_path, max_attempts=3)
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(STATES)
    message = str(raised.value)
    assert len(server.request_lines) == 3
    assert "after 3 attempts" in message
    assert "HTTP 500" in message
    assert "x" * 200 in message and "x" * 201 not in message
    assert "retry later" in message


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a connection to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    sleeps = Sleeps()
    client = MspoClient(
        f"http://127.0.0.1:{unused_port()}/api", max_attempts=2, sleep=sleeps, log=Recorder()
    )
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(STATES, partition="2026-11-30")
    assert len(sleeps.waits) == 1
    assert "(partition 2026-11-30)" in str(raised.value)
    assert "no HTTP status" in str(raised.value)
    assert (raised.value.status, raised.value.partition) == (None, "2026-11-30")


def test_tls_to_a_plain_http_port_fails_at_once_without_a_status(
    server: Server, tmp_path: Path
) -> None:
    server.script = [reply(200, BODY)]
    client, _ = client_for(server, tmp_path)
    client.base_url = server.base_url.replace("http://", "https://")
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(ZONES, partition="2026-11-30")
    message = str(raised.value)
    assert message.startswith("endpoint 'zones' (partition 2026-11-30): the TLS handshake failed")
    assert f"URL {client.base_url}/spoc/zones?, no HTTP status." in message
    assert "MSPO_CA_BUNDLE" in message
    assert server.request_lines == []  # the plain server never saw a request it could parse


def test_tls_opt_out_warns_every_time_and_a_missing_bundle_fails(tmp_path: Path) -> None:
    log = Recorder()
    MspoClient(verify_tls=False, log=log).close()
    MspoClient(verify_tls=False, log=log).close()
    assert len(log.warnings) == 2
    assert "TLS verification is OFF" in log.warnings[0]
    with pytest.raises(MspoApiError, match="MSPO_CA_BUNDLE"):
        MspoClient(ca_bundle=str(tmp_path / "missing.pem"), log=log)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked until a request is made")
    with MspoClient(ca_bundle=str(bundle)) as client:
        assert client.session.verify == str(bundle)


def test_date_is_read_case_insensitively_and_judged_before_the_body(
    server: Server, tmp_path: Path
) -> None:
    """A proxy that lowercases header names must not make the capture use our own clock."""
    served = "Fri, 20 Nov 2026 01:02:03 GMT"
    server.script = [reply_with_only(200, BODY, {"date": served})]
    client, _ = client_for(server, tmp_path)
    # Our clock says the 25th: only the server's lowercase `date:` makes this capture on time.
    gate = CaptureGate(
        "2026-11-20", LatePolicy.REFUSE, clock=lambda: dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    )
    seen: list[tuple[ResponseHead, list[Path]]] = []

    def judge(head: ResponseHead) -> None:
        seen.append((head, list(tmp_path.iterdir())))
        gate(head)

    with client, client.fetch(ZONES, partition="2026-11-20", on_headers=judge) as result:
        assert result.headers["Date"] == result.headers["DATE"] == served
        assert result.body_path.read_bytes() == BODY
    assert gate.timing.captured_at == dt.datetime(2026, 11, 20, 1, 2, 3, tzinfo=dt.UTC)
    [(head, files_then)] = seen
    assert (head.endpoint, head.partition, head.status) == ("zones", "2026-11-20", 200)
    assert head.url == f"{server.base_url}/spoc/zones?"
    assert files_then == []  # judged before the body had anywhere to go


def test_a_refusal_on_the_headers_stops_the_download_and_is_not_retried(
    server: Server, tmp_path: Path
) -> None:
    size = 64 * api.MB
    sent = Sent()
    late = http_date(dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC))  # 3 days after the partition
    server.script = [large_body(size, {"Date": late}, sent)]
    client, _ = client_for(server, tmp_path)
    gate = CaptureGate("2026-11-20", LatePolicy.REFUSE)
    with client, pytest.raises(LateCaptureRefusedError, match=r"\(partition 2026-11-20\)"):
        client.fetch(ZONES, partition="2026-11-20", on_headers=gate)
    assert sent.finished.wait(10)
    # What was written before the client hung up fits in the sockets' buffers: far from all.
    assert sent.body_bytes < size // 2
    assert len(server.request_lines) == 1
    assert list(tmp_path.iterdir()) == []


def test_resource_fetches_on_one_shared_client(server: Server, tmp_path: Path) -> None:
    server.script = [reply(200, BODY)]
    api = MspoApi(base_url=server.base_url)
    log = Recorder()
    with api.fetch(ZONES, log=log) as first, api.fetch(STATES, log=log) as second:
        assert first.body_path.read_bytes() == second.body_path.read_bytes() == BODY
    assert api._client is not None
    assert len(server.request_lines) == 2
    assert any("zones" in line for line in log.infos)


def test_endpoint_url_and_retry_after_parsing() -> None:
    assert endpoint_url("https://h/api/", ZONES) == "https://h/api/spoc/zones?"
    assert endpoint_url("https://h/api", STATES) == "https://h/api/references/states"
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_resource_inside_a_dagster_run_logs_to_the_run(server: Server) -> None:
    server.script = [reply(200, BODY)]

    @dg.asset
    def zones_body(context: dg.AssetExecutionContext, mspo_api: MspoApi) -> int:
        with mspo_api.fetch(ZONES, log=context.log) as result:
            return result.bytes_received

    instance = dg.DagsterInstance.ephemeral()
    run = dg.materialize(
        [zones_body], resources={"mspo_api": MspoApi(base_url=server.base_url)}, instance=instance
    )
    assert run.output_for_node("zones_body") == len(BODY)
    assert server.request_lines == ["GET /api/spoc/zones? HTTP/1.1"]
    logged = [record.user_message for record in instance.all_logs(run.run_id)]
    assert any(message.startswith("MSPO API zones: 0.0 MB in") for message in logged)


def test_credentials_in_the_base_url_are_refused_before_they_reach_a_log() -> None:
    with pytest.raises(ValueError, match="carries credentials") as raised:
        MspoClient("https://user:s3cret@api.example.test/api")
    assert "s3cret" not in str(raised.value)


@dataclass(frozen=True)
class CaptureFailure:
    """One way a capture fails, as the real raw asset meets it."""

    script: Callable[[], list[Action]]
    status: str
    """How the message states the HTTP status."""
    says: str
    """A fragment of the message that tells the reader what went wrong or what to do."""
    scheme: str = "http"
    refused: bool = False
    """Point the pipeline at a port nothing listens on instead of the scripted server."""


def _served_in(days: int) -> list[Action]:
    """A good body whose server clock is ``days`` ahead, sent as a lowercase ``date:`` header."""
    later = http_date(dt.datetime.now(dt.UTC) + dt.timedelta(days=days))
    return [reply_with_only(200, BODY, {"date": later})]


CAPTURE_FAILURES = {
    "5xx retries exhausted": CaptureFailure(
        lambda: [reply(503, b"busy")], "HTTP 503", "retry later"
    ),
    "429 retries exhausted": CaptureFailure(
        lambda: [reply(429, b"slow down", {"Retry-After": "1"})], "HTTP 429", "rate-limiting"
    ),
    "404 not retried": CaptureFailure(
        lambda: [reply(404, b"<html>Not Found</html>")], "HTTP 404", "catalog.py"
    ),
    "TLS to a plain HTTP port": CaptureFailure(
        lambda: [reply(200, BODY)], "no HTTP status", "MSPO_CA_BUNDLE", scheme="https"
    ),
    "connection refused": CaptureFailure(
        list, "no HTTP status", "check MSPO_API_BASE_URL", refused=True
    ),
    "unexpected Content-Encoding": CaptureFailure(
        lambda: [reply(200, b"\x00\x01", {"Content-Encoding": "br"})], "HTTP 200", "'br'"
    ),
    "body cut short beyond retries": CaptureFailure(
        lambda: [cut(BODY[:10], declared=len(BODY))], "HTTP 200", "cut short"
    ),
    "HTML page": CaptureFailure(
        lambda: [reply(200, b"<html><body>Scheduled maintenance</body></html>")],
        "HTTP 200",
        "Scheduled maintenance",
    ),
    "not JSON": CaptureFailure(lambda: [reply(200, b"{not json")], "HTTP 200", "{not json"),
    "empty snapshot": CaptureFailure(
        lambda: [reply(200, b'{"data": []}')], "HTTP 200", "never empty"
    ),
    "late capture refused": CaptureFailure(
        lambda: _served_in(days=3), "HTTP 200", "MSPO_LATE_CAPTURE=allow"
    ),
}


@pytest.mark.parametrize("kind", list(CAPTURE_FAILURES))
def test_every_capture_failure_names_endpoint_partition_url_and_status(
    kind: str, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user reads when today's capture fails, whatever failed, through the real asset."""
    failure = CAPTURE_FAILURES[kind]
    server.script = failure.script() or [reply(200, BODY)]
    port = unused_port() if failure.refused else urlsplit(server.base_url).port
    base_url = f"{failure.scheme}://127.0.0.1:{port}/api"
    data = tmp_path / "data"
    monkeypatch.setenv("MSPO_API_BASE_URL", base_url)
    monkeypatch.setenv("MSPO_DATA_ROOT", str(data))
    # Refuse late captures: every other kind is dated today by the server, so only the late one
    # (dated by a lowercase `date:` header) can trip it.
    monkeypatch.setenv("MSPO_LATE_CAPTURE", "refuse")
    today = pipeline.today()

    result = pipeline.materialize(today, "raw/zones")

    assert not result.success
    message = pipeline.failure_messages(result)
    assert f"endpoint 'zones' (partition {today}): " in message, message
    assert f"URL {base_url}/spoc/zones?, {failure.status}" in message, message
    assert failure.says in message, message
    assert not list(data.rglob("*.parquet"))
    kept = list((data / "rejected").rglob("*.json")) if data.exists() else []
    if kind in BODIES_KEPT:  # the parser refused a body that arrived whole: it is evidence
        assert [str(path) for path in kept] == [message.split("kept at ")[1].split(" for ")[0]]
        assert failure.says.encode() in kept[0].read_bytes()
    else:
        assert kept == []


BODIES_KEPT = ("HTML page", "not JSON")


def test_the_raw_asset_refuses_a_late_capture_before_downloading_it(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 64 * api.MB
    sent = Sent()
    server.script = [large_body(size, {"Date": http_date(dt.datetime.now(dt.UTC))}, sent)]
    monkeypatch.setenv("MSPO_API_BASE_URL", server.base_url)
    monkeypatch.setenv("MSPO_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MSPO_LATE_CAPTURE", "refuse")
    missed = pipeline.today() - dt.timedelta(days=2)

    result = pipeline.materialize(missed, "raw/zones")

    assert not result.success
    assert "MSPO_LATE_CAPTURE=refuse" in pipeline.failure_messages(result)
    assert sent.finished.wait(10)
    assert sent.body_bytes < size // 2  # the headers decided it: the body was left unsent
    assert len(server.request_lines) == 1
