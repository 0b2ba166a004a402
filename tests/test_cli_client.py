"""cli_client on its own: the session file, the address, and the HTTP exchange over a Unix
socket with a small standard-library server standing in for the hotline server's transport
(the real server is tests/test_cli.py's)."""

from __future__ import annotations

import hashlib
import json
import socket
import socketserver
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import cli_client
from cli_client import ApiClient, ApiError, ClientError, ServerUnreachable, SignedIn

AUDIO = b"RIFF" + bytes(range(256)) * 600


class Handler(BaseHTTPRequestHandler):
    """Answers as the API would: JSON, refusals with a body, a recording with its hash."""

    seen: list[tuple[str, str, str | None, Any]] = []  # noqa: RUF012 - one per test server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = b"" if data is None else json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("Authorization"), None))
        if self.path.startswith("/v1/cases?"):
            self.reply(200, [{"reference": "100000017", "draft_text": "انقطاع"}])
        elif self.path == "/v1/whoami":
            self.reply(401, {"error": "sign in first", "code": "signin_required"})
        elif self.path == "/v1/slow":
            self.reply(429, {"error": "too many tries", "code": "slowed", "retry_after": 2.5})
        elif self.path == "/v1/broken":
            self.send_response(502)
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b"bad gateway")
        elif self.path.startswith("/v1/recordings/"):
            digest = hashlib.sha256(AUDIO).hexdigest()
            if "tampered" in self.path:
                digest = hashlib.sha256(b"other").hexdigest()
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(AUDIO)))
            self.send_header("X-Recording-SHA256", digest)
            self.send_header("Content-Disposition", 'attachment; filename="../hotline-1.wav"')
            self.end_headers()
            self.wfile.write(AUDIO)
        else:
            self.reply(404, {"error": "no such thing", "code": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append(("POST", self.path, self.headers.get("Authorization"), body))
        self.reply(201, {"echo": body})

    def do_DELETE(self) -> None:
        self.seen.append(("DELETE", self.path, self.headers.get("Authorization"), None))
        self.send_response(204)
        self.end_headers()


class UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "hotline.sock"
    Handler.seen = []
    httpd = UnixHttpServer(str(path), Handler)
    # http.server reads client_address[0] for its log line; a Unix peer has none.
    httpd.get_request = lambda: (httpd.socket.accept()[0], ("unix", 0))  # type: ignore[method-assign]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"unix:{path}"
    httpd.shutdown()
    httpd.server_close()


def test_json_in_and_out_with_the_bearer_token(server: str) -> None:
    api = ApiClient(server, "tok")
    assert api.get("/cases", {"status": "open", "department": None, "limit": 5}) == [
        {"reference": "100000017", "draft_text": "انقطاع"}
    ]
    assert api.post("/cases/1/resolve", {"summary": "تم"}) == {"echo": {"summary": "تم"}}
    assert api.delete("/sessions/current") is None
    assert [(m, p, a) for m, p, a, _ in Handler.seen] == [
        ("GET", "/v1/cases?status=open&limit=5", "Bearer tok"),
        ("POST", "/v1/cases/1/resolve", "Bearer tok"),
        ("DELETE", "/v1/sessions/current", "Bearer tok"),
    ]


def test_a_refusal_is_one_api_error_with_its_code_and_retry(server: str) -> None:
    api = ApiClient(server, "tok")
    with pytest.raises(ApiError) as ended:
        api.get("/whoami")
    assert (ended.value.status, ended.value.code) == (401, "signin_required")
    with pytest.raises(ApiError) as slowed:
        api.get("/slow")
    assert (slowed.value.code, slowed.value.retry_after) == ("slowed", 2.5)
    with pytest.raises(ApiError) as broken:
        api.get("/broken")
    assert broken.value.status == 502 and "bad gateway" in broken.value.message


def test_no_server_is_one_line_naming_the_address(tmp_path: Path) -> None:
    address = f"unix:{tmp_path / 'none.sock'}"
    with pytest.raises(ServerUnreachable) as missing:
        ApiClient(address, "tok").get("/cases")
    assert str(missing.value) == (
        f"the hotline server at {address} is not answering: is `hotline serve` running?"
    )
    stale = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(stale))
    listener.close()  # the file stays, nobody listens: connection refused
    with pytest.raises(ServerUnreachable, match="is not answering"):
        ApiClient(f"unix:{stale}", "tok").get("/cases")


@pytest.mark.parametrize(
    "address", ["unix:relative.sock", "http://host:80", "https://", "host:8443", "ftp://x"]
)
def test_a_bad_address_is_refused_with_the_forms_it_takes(address: str) -> None:
    with pytest.raises(ClientError, match=r"unix:|absolute path"):
        cli_client.parse_address(address)


def test_https_addresses() -> None:
    assert cli_client.parse_address("https://hotline.example:8443") == cli_client.Address(
        "https://hotline.example:8443", host="hotline.example", port=8443
    )
    assert cli_client.parse_address("https://[::1]").host == "::1"


def test_a_recording_streams_into_a_private_file_with_its_hash_checked(
    server: str, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    got = ApiClient(server, "tok").download("/recordings/7/audio", {"purpose": "play"}, folder)
    # The server's file name, reduced to a bare name (no ../ out of the folder).
    assert got.path == folder / "hotline-1.wav"
    assert got.path.read_bytes() == AUDIO and got.size == len(AUDIO)
    assert stat.S_IMODE(got.path.stat().st_mode) == 0o600
    with pytest.raises(ClientError, match="not overwritten"):
        ApiClient(server, "tok").download("/recordings/7/audio", {}, got.path)


def test_a_recording_that_differs_from_its_hash_is_removed(server: str, tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="differs from the SHA-256"):
        ApiClient(server, "tok").download("/recordings/tampered/audio", {}, tmp_path / "x.wav")
    assert list(tmp_path.iterdir()) == [tmp_path / "hotline.sock"]


def test_the_session_file_is_private_and_written_whole(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    path = cli_client.session_path(env)
    assert path == tmp_path / "config" / "hotline" / "session.json"
    session = SignedIn("unix:/run/hotline/hotline.sock", "secret-token", "amal", None)
    cli_client.save_session(session, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cli_client.load_session(path) == session
    assert json.loads(path.read_text()) == {
        "server": "unix:/run/hotline/hotline.sock",
        "token": "secret-token",
        "username": "amal",
        "cafile": None,
    }
    assert [p.name for p in path.parent.iterdir()] == ["session.json"]  # no temporary left
    assert cli_client.forget_session(path) and cli_client.load_session(path) is None
    assert not cli_client.forget_session(path)


def test_a_damaged_session_file_says_to_sign_in_again(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ClientError, match="run hotline login again"):
        cli_client.load_session(path)


def test_an_unwritable_session_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ClientError, match="cannot write"):
        cli_client.save_session(SignedIn("unix:/x", "t", "u"), blocker / "hotline" / "s.json")


def test_the_server_address_comes_from_the_option_the_session_the_environment_or_default() -> None:
    kept = SignedIn("unix:/srv/kept.sock", "t", "u")
    env = {"HOTLINE_SERVER": "https://hotline.example:8443"}
    assert cli_client.default_server("unix:/x.sock", kept, env) == "unix:/x.sock"
    assert cli_client.default_server(None, kept, env) == "unix:/srv/kept.sock"
    assert cli_client.default_server(None, None, env) == "https://hotline.example:8443"
    assert cli_client.default_server(None, None, {}) == "unix:/run/hotline/hotline.sock"


def test_no_session_is_the_not_signed_in_error() -> None:
    with pytest.raises(cli_client.NotSignedIn, match="not signed in: run hotline login"):
        ApiClient.signed_in(None)


def test_the_client_modules_use_the_standard_library_only() -> None:
    """cli_client runs on agents' machines at every command: nothing installed beside it."""
    import ast
    import sys

    source = Path(cli_client.__file__).read_text(encoding="utf-8")
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names), imported
