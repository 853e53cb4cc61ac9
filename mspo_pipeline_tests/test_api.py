"""The API client against scripted HTTP servers on 127.0.0.1 that record the raw request line."""

import gzip
import http.server
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

import mspo_pipeline
from mspo_pipeline.lib import api, catalog
from mspo_pipeline.lib.api import (
    MspoApiError,
    MspoClient,
    endpoint_url,
    retry_after_seconds,
)
from mspo_pipeline.lib.resources import MspoApi

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
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
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
        client.fetch(ZONES)
    message = str(raised.value)
    assert len(server.request_lines) == 1
    assert f"{server.base_url}/spoc/zones?" in message
    assert "zones" in message
    assert "HTTP 404" in message
    assert "<html>Not Found</html>" in message
    assert "MSPO_API_BASE_URL" in message
    assert raised.value.status == 404
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


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    client = MspoClient(
        f"http://127.0.0.1:{port}/api", max_attempts=2, sleep=sleeps, log=Recorder()
    )
    with client, pytest.raises(MspoApiError) as raised:
        client.fetch(STATES)
    assert len(sleeps.waits) == 1
    assert "no HTTP status" in str(raised.value)
    assert raised.value.status is None


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
