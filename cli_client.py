"""The `hotline` command's side of the hotline server: the session file and a small HTTP client.

People's commands hold only the server's address and their session (a token the server issued at
`hotline login`); the server alone reads the config, the database and the recordings, and decides
who may do what from the token. So this module needs nothing of ours and nothing heavy.

Why the standard library (http.client over a Unix socket or TLS, json) and not httpx: an agent
runs `hotline` commands all day and each one starts a fresh interpreter, so import time is most
of a command's wall time. Measured with the project's Python 3.11.7, p50 of 30 starts each,
alternating (httpx 0.28.1 installed only for this, in a throwaway venv beside the shared one so
nothing else was disturbed): `python -c pass` 11 ms, `import http.client, json, socket` 44 ms
(http.client imports ssl and the email parser itself), `import httpx` 86 ms, and 128 ms once an
httpx Client with a Unix-socket transport is built (it loads the certifi bundle). We need four
verbs, JSON, one streamed download and two transports: less code than 40-80 ms a command is
worth.

The session file: ``$XDG_CONFIG_HOME/hotline/session.json`` (default ``~/.config/hotline``),
mode 0600 in a 0700 folder, written whole (a temporary file renamed over it), so a crash never
leaves half a token and nobody else on the machine can read it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_SERVER = "unix:/run/hotline/hotline.sock"
SERVER_ENV = "HOTLINE_SERVER"
API_PREFIX = "/v1"
# Every answer but a callback being dialled (which waits for the customer) comes in seconds;
# a server retrying a locked database says so itself within database.retry_seconds.
TIMEOUT_SECONDS = 120.0
DIAL_TIMEOUT_SECONDS = 600.0
_CHUNK = 1 << 16


class ClientError(Exception):
    """Something on this side of the connection, phrased for the person (one line)."""


class NotSignedIn(ClientError):
    def __init__(self) -> None:
        super().__init__("not signed in: run hotline login")


class ServerUnreachable(ClientError):
    """No answer from the server's address (not running, no permission, TLS refused...)."""


class ApiError(Exception):
    """The server's refusal: its status, its machine word and its one-line message."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


# --- where things are kept ---------------------------------------------------------------------


def config_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hotline"


def state_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hotline"


def session_path(environ: Mapping[str, str] | None = None) -> Path:
    return config_home(environ) / "session.json"


def write_private(path: Path, text: str) -> None:
    """``text`` at ``path`` readable by its owner only, all or nothing: the folder is created
    0700, the text goes to a temporary file (0600 from the start) renamed over ``path``."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise ClientError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ClientError(f"cannot write {path}: {exc.strerror}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the session ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """What `hotline login` keeps: where the server is and the token it issued."""

    server: str
    token: str
    username: str
    cafile: str | None = None


def load_session(path: Path | None = None) -> SignedIn | None:
    """The session file, or None when there is none; a damaged one is a clear error."""
    where = path or session_path()
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
        return SignedIn(
            server=str(data["server"]),
            token=str(data["token"]),
            username=str(data["username"]),
            cafile=None if data.get("cafile") is None else str(data["cafile"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(
            f"the session file {where} cannot be read ({exc.__class__.__name__}): "
            "run hotline login again"
        ) from exc


def save_session(session: SignedIn, path: Path | None = None) -> Path:
    where = path or session_path()
    write_private(where, json.dumps(asdict(session), ensure_ascii=False, indent=2) + "\n")
    return where


def forget_session(path: Path | None = None) -> bool:
    """Remove the session file; False when there was none."""
    where = path or session_path()
    try:
        where.unlink()
    except FileNotFoundError:
        return False
    return True


def default_server(
    explicit: str | None, session: SignedIn | None, environ: Mapping[str, str] | None = None
) -> str:
    """The address to sign in at: --server, else the last session's, else $HOTLINE_SERVER, else
    the packaged default. It says where to connect, never who you are."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if session is not None:
        return session.server
    return env.get(SERVER_ENV) or DEFAULT_SERVER


# --- the transport -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    """``unix:/abs/path.sock`` or ``https://host:port``."""

    text: str
    socket_path: str | None = None
    host: str | None = None
    port: int = 443


def parse_address(text: str) -> Address:
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if not path.startswith("/"):
            raise ClientError(f"server address {text!r}: a Unix socket needs an absolute path")
        return Address(text, socket_path=path)
    match = re.fullmatch(r"https://(\[[0-9a-fA-F:.]+\]|[^/:\[\]]+)(?::(\d{1,5}))?/?", text)
    if match is None:
        raise ClientError(
            f"server address {text!r}: use unix:/path/to/hotline.sock or https://host:port"
        )
    return Address(text, host=match.group(1).strip("[]"), port=int(match.group(2) or 443))


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the server's Unix socket (the host name is only for the Host header)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(f"cannot read the CA file {cafile}: {exc}") from exc


@dataclass(frozen=True)
class Download:
    path: Path
    sha256: str
    size: int


class ApiClient:
    """get/post/delete on the server's /v1 API, answers parsed from JSON; a refusal raises
    ApiError, a connection that fails raises ServerUnreachable naming the address."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        cafile: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.address = parse_address(server)
        self.token = token
        self.cafile = cafile
        self.timeout = timeout

    @classmethod
    def signed_in(cls, session: SignedIn | None) -> ApiClient:
        if session is None:
            raise NotSignedIn
        return cls(session.server, session.token, cafile=session.cafile)

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self._json("GET", path, query=query)

    def post(
        self, path: str, body: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        return self._json("POST", path, body=body or {}, timeout=timeout)

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._json("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self._json("DELETE", path)

    def download(self, path: str, query: Mapping[str, Any], destination: Path) -> Download:
        """Stream the answer's bytes to ``destination`` (a file, or a folder to put the server's
        file name in) as they arrive, hashing them. They go to ``NAME.partial`` (0600) first and
        get their name only when their SHA-256 matches the server's X-Recording-SHA256;
        otherwise the file is removed. An existing file is never overwritten."""
        if destination.exists() and not destination.is_dir():
            raise ClientError(f"{destination} exists: not overwritten")
        folder = destination if destination.is_dir() else destination.parent
        if not folder.is_dir():
            # Said before the server is asked: it would send (and log) a copy nobody can keep.
            raise ClientError(f"folder {folder} does not exist: nothing fetched")
        connection, response = self._send("GET", path, query=query)
        try:
            if response.status >= 400:
                raise self._refusal(response.status, response.read())
            expected = (response.getheader("X-Recording-SHA256") or "").strip().lower()
            if not expected:
                raise ClientError("the server sent the recording without its SHA-256: not kept")
            target = destination
            if destination.is_dir():
                fallback = f"recording-{path.rstrip('/').split('/')[-2]}.wav"
                name = file_name(response.getheader("Content-Disposition"), fallback)
                target = destination / name
            size, actual = self._receive(response, target)
            if actual != expected:
                _partial(target).unlink(missing_ok=True)
                raise ClientError(
                    f"the recording received ({size} bytes) differs from the SHA-256 the server "
                    "sent: nothing kept, try again"
                )
            partial = _partial(target)
            try:
                os.link(partial, target)  # unlike a rename, never replaces an existing file
            except FileExistsError as exc:
                raise ClientError(f"{target} exists: not overwritten") from exc
            finally:
                partial.unlink(missing_ok=True)
            return Download(target, expected, size)
        finally:
            connection.close()

    def _receive(self, response: http.client.HTTPResponse, target: Path) -> tuple[int, str]:
        partial = _partial(target)
        if target.exists():
            raise ClientError(f"{target} exists: not overwritten")
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise ClientError(f"{partial} exists (another download?): not overwritten") from exc
        except OSError as exc:
            raise ClientError(f"cannot write {partial}: {exc.strerror}") from exc
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(descriptor, "wb") as file:
                while chunk := response.read(_CHUNK):
                    file.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        except (OSError, http.client.HTTPException) as exc:
            partial.unlink(missing_ok=True)
            if isinstance(exc, http.client.HTTPException | ConnectionError | TimeoutError):
                raise self._unreachable(exc) from exc
            raise ClientError(f"cannot write {partial}: {exc}") from exc
        return size, digest.hexdigest()

    # --- internals -----------------------------------------------------------------------------

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        url = API_PREFIX + path
        pairs = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        return f"{url}?{urlencode(pairs)}" if pairs else url

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.address.socket_path is not None:
            return _UnixConnection(self.address.socket_path, timeout)
        assert self.address.host is not None
        return http.client.HTTPSConnection(
            self.address.host,
            self.address.port,
            timeout=timeout,
            context=_tls_context(self.cafile),
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        headers = {"Accept": "application/json", "User-Agent": "hotline-cli"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        connection = self._connection(timeout or self.timeout)
        try:
            connection.request(method, self._url(path, query), body=payload, headers=headers)
            return connection, connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise self._unreachable(exc) from exc

    def _json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        connection, response = self._send(method, path, query=query, body=body, timeout=timeout)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        finally:
            connection.close()
        if response.status >= 400:
            raise self._refusal(response.status, raw)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ClientError(
                f"the server at {self.address.text} answered {response.status} with no JSON"
            ) from exc

    def _refusal(self, status: int, raw: bytes) -> ApiError:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("error"), str):
            reason = http.client.responses.get(status, "error")
            text = raw.decode("utf-8", "replace").strip().splitlines()
            detail = f": {text[0][:200]}" if text else ""
            return ApiError(status, "http", f"the server answered {status} {reason}{detail}")
        retry = data.get("retry_after")
        return ApiError(
            status,
            str(data.get("code") or "error"),
            " ".join(str(data["error"]).split()),
            float(retry) if isinstance(retry, int | float) else None,
        )

    def _unreachable(self, exc: BaseException) -> ServerUnreachable:
        where = self.address.text
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or str(exc)
            return ServerUnreachable(
                f"the hotline server at {where}: its TLS certificate is not trusted ({why}): "
                "give its CA with hotline login --cafile PEM"
            )
        if isinstance(exc, ssl.SSLError):
            return ServerUnreachable(f"the hotline server at {where}: TLS failed ({exc.reason})")
        if isinstance(exc, PermissionError):
            return ServerUnreachable(
                f"the hotline server at {where} refuses you the socket (permission denied): "
                "your account must be in the server's socket group"
            )
        if isinstance(exc, TimeoutError):
            return ServerUnreachable(
                f"the hotline server at {where} did not answer in {self.timeout:.0f} s"
            )
        if isinstance(exc, ClientError):
            return ServerUnreachable(str(exc))
        if isinstance(exc, http.client.HTTPException | ConnectionResetError | BrokenPipeError):
            return ServerUnreachable(
                f"the hotline server at {where} closed the connection before answering "
                "(did it stop?)"
            )
        return ServerUnreachable(
            f"the hotline server at {where} is not answering: is `hotline serve` running?"
        )


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def file_name(disposition: str | None, fallback: str) -> str:
    """The file name in a Content-Disposition header, reduced to a bare name."""
    match = re.search(r'filename="?([^";]+)"?', disposition or "")
    name = Path(match.group(1)).name if match else ""
    return name if name not in ("", ".", "..") else fallback


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def quoted(segment: str | int) -> str:
    """One path segment (a reference, a user name), escaped."""
    return quote(str(segment), safe="")
