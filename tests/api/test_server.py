"""The ``api`` component as a server: the Unix socket's mode, group and folder, a stale socket
replaced and a live one refused, TCP refused in clear off loopback (at config load) and served
with TLS, the start-up checks, and `run_components` in its own process until SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from casebook import signin, site_secrets
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import AuditEvent
from hotline.app.checks import check_database, check_socket, check_tls, run_checks
from hotline.app.config import ConfigError, Settings, load_settings
from hotline.app.http_server import ApiServer, ApiStartError
from hotline.app.server_settings import ServerSettings
from tests.api.conftest import PASSWORD, ApiSite, socket_group, unique
from tests.api.unix_http import Client

PATIENCE = 60.0  # safety net for a process to start or stop; never reached when healthy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def short_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hl-srv-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder)


def copy_of(api_site: ApiSite, socket_path: Path) -> Settings:
    settings = api_site.settings.model_copy(deep=True)
    settings.server.socket = socket_path
    return settings


# --- the Unix socket ----------------------------------------------------------------------------


def test_the_socket_is_0660_in_its_group_in_a_0750_folder(api_site: ApiSite) -> None:
    path = api_site.settings.server.socket
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == socket_group().gr_gid
    folder = path.parent.stat()
    assert stat.S_IMODE(folder.st_mode) == 0o750  # created by the server
    assert folder.st_gid == socket_group().gr_gid


def test_a_stale_socket_is_replaced_and_removed_on_stop(
    api_site: ApiSite, short_folder: Path
) -> None:
    path = short_folder / "hotline.sock"
    with socket.socket(socket.AF_UNIX) as killed:  # bound, never listening: its server died
        killed.bind(str(path))
    settings = copy_of(api_site, path)
    server = ApiServer(api_site.db, settings)
    server.start()
    try:
        answer = Client(path, api_site.tokens["admin"]).get("/v1/whoami")
        assert answer.status == 200 and answer.json()["username"] == "admin"
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
    finally:
        server.stop()
    assert not path.exists()


def test_a_live_socket_or_a_file_in_its_place_is_refused(
    api_site: ApiSite, short_folder: Path
) -> None:
    second = ApiServer(api_site.db, api_site.settings)
    with pytest.raises(ApiStartError, match="another server is running on"):
        second.start()
    assert Client(api_site.settings.server.socket).get("/v1/whoami").status == 401  # still up
    check = check_socket(api_site.settings)
    assert not check.ok and "another server is running" in check.message

    path = short_folder / "hotline.sock"
    path.write_text("not a socket")
    settings = copy_of(api_site, path)
    with pytest.raises(ApiStartError, match="is not a socket"):
        ApiServer(api_site.db, settings).start()
    assert path.read_text() == "not a socket"  # left alone
    assert not check_socket(settings).ok


def test_an_unknown_socket_group_is_refused(api_site: ApiSite, short_folder: Path) -> None:
    settings = copy_of(api_site, short_folder / "hotline.sock")
    settings.server.socket_group = "no-such-group-" + unique("g")
    with pytest.raises(ApiStartError, match="no such group"):
        ApiServer(api_site.db, settings).start()
    check = check_socket(settings)
    assert not check.ok and "no such group" in check.message


# --- TCP ----------------------------------------------------------------------------------------


def write_config(folder: Path, server_block: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(f"server:\n{server_block}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("  tcp_host: 0.0.0.0\n", "tcp_host 0.0.0.0 is reachable from other machines"),
        ("  tcp_host: hotline.example\n", r"set tls_cert and tls_key \(HTTPS\), or allow_plain"),
        ("  tcp_host: '::'\n", "reachable from other machines"),
        ("  tls_cert: cert.pem\n", "tls_cert and tls_key go together"),
    ],
)
def test_clear_tcp_off_loopback_is_refused_at_config_load(
    tmp_path: Path, block: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings(write_config(tmp_path, block), environ={})
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith(f"{tmp_path / 'config.yaml'}: server: ")


def test_clear_tcp_on_loopback_or_explicitly_allowed_loads(tmp_path: Path) -> None:
    loopback = load_settings(write_config(tmp_path, "  tcp_host: 127.0.0.1\n"), environ={})
    assert loopback.server.tcp_host == "127.0.0.1" and not loopback.server.tls
    allowed = load_settings(
        write_config(tmp_path, "  tcp_host: 0.0.0.0\n  allow_plain_http: true\n"), environ={}
    )
    assert allowed.server.allow_plain_http
    https = load_settings(
        write_config(tmp_path, "  tcp_host: 0.0.0.0\n  tls_cert: c.pem\n  tls_key: k.pem\n"),
        environ={},
    )
    assert https.server.tls_cert == tmp_path / "c.pem"  # relative to the config file
    assert https.server.socket == tmp_path / "var" / "hotline.sock"


def with_tcp(server: ServerSettings, port: int, cert: Path, key: Path) -> ServerSettings:
    """``server`` listening on loopback TCP too, with TLS (the section checks its keys
    together, so it is made whole)."""
    return ServerSettings.model_validate(
        server.model_dump()
        | {"tcp_host": "127.0.0.1", "tcp_port": port, "tls_cert": cert, "tls_key": key}
    )


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=hotline.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=PATIENCE,
    )
    return cert, key


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tcp_with_tls_serves_the_api(api_site: ApiSite, short_folder: Path) -> None:
    cert, key = self_signed(short_folder)
    settings = copy_of(api_site, short_folder / "hotline.sock")
    port = free_port()
    settings.server = with_tcp(settings.server, port, cert, key)
    assert check_tls(settings).ok and "HTTPS" in check_tls(settings).message
    server = ApiServer(api_site.db, settings)
    server.start()
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        client = Client(tls_port=port, tls_context=trusting)
        username = api_site.add_agent(["agent"], "billing")
        refused = client.post("/v1/sessions", {"username": username, "password": "wrong pass!"})
        assert refused.status == 401
        signed = client.post("/v1/sessions", {"username": username, "password": PASSWORD})
        assert signed.status == 201
        who = client.as_(signed.json()["token"]).get("/v1/whoami")
        assert who.status == 200 and who.json()["username"] == username
        state = server.state()
        assert (state["tcp"], state["tls"]) == (f"127.0.0.1:{port}", True)

        old = ssl.create_default_context(cafile=str(cert))
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, ConnectionError)):
            Client(tls_port=port, tls_context=old).get("/v1/whoami")
        with pytest.raises(ssl.SSLCertVerificationError):
            Client(tls_port=port, tls_context=ssl.create_default_context()).get("/v1/whoami")
    finally:
        server.stop()
    with api_site.db.session() as session:
        entries = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "session.refused", AuditEvent.object_id == username
            )
        ).all()
    assert "127.0.0.1" in str(entries[-1].detail)  # the TCP peer, not "unix"


def test_unreadable_tls_files_fail_the_check_and_the_start(
    api_site: ApiSite, short_folder: Path
) -> None:
    settings = copy_of(api_site, short_folder / "hotline.sock")
    missing = (short_folder / "missing-cert.pem", short_folder / "missing-key.pem")
    settings.server = with_tcp(settings.server, free_port(), *missing)
    check = check_tls(settings)
    assert not check.ok and "missing-cert.pem" in check.message
    with pytest.raises(ApiStartError, match=r"cannot load server\.tls_cert"):
        ApiServer(api_site.db, settings).start()
    assert not (short_folder / "hotline.sock").exists()


# --- start-up checks and the process ------------------------------------------------------------


def test_the_api_checks_need_a_database_that_exists(short_folder: Path) -> None:
    settings = Settings()
    settings.database.url = f"sqlite:///{short_folder / 'missing.db'}"
    settings.server.socket = short_folder / "run" / "hotline.sock"
    names = [check.name for check in run_checks(settings, ["api"])]
    assert names == ["database", "secrets", "socket", "tcp"]
    database = check_database(settings)
    assert not database.ok and "does not exist" in database.message
    assert not (short_folder / "missing.db").exists()  # never a new empty site


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_socket_folder_fails_the_check(short_folder: Path) -> None:
    locked = short_folder / "locked"
    locked.mkdir(mode=0o500)
    settings = Settings()
    settings.server.socket = locked / "run" / "hotline.sock"
    check = check_socket(settings)
    assert not check.ok and "not writable" in check.message
    locked.chmod(0o700)


SERVE = """
import sys
from pathlib import Path
from hotline.app.components import ServeError, run_components
from hotline.app.config import load_settings
try:
    run_components(load_settings(Path(sys.argv[1])), ["api"], on_check=print)
except ServeError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def test_run_components_serves_the_api_until_sigterm(short_folder: Path) -> None:
    config = short_folder / "config.yaml"
    config.write_text(
        "database:\n  url: sqlite:///hotline.db\nserver:\n  socket: run/hotline.sock\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    db = Database(settings.database, create=True)
    site_secrets.create_site_keys(settings.secrets)  # `hotline db upgrade`'s other part
    db.run(
        lambda session: signin.bootstrap_admin(
            session,
            settings,
            username="root",
            display_name="Root",
            password=PASSWORD,
            os_user="test",
            now=utcnow(),
        )
    )
    db.dispose()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    socket_path = short_folder / "run" / "hotline.sock"
    client = Client(socket_path)
    try:
        waited = threading.Event()
        for _ in range(int(PATIENCE / 0.05)):
            if socket_path.exists() or process.poll() is not None:
                break
            waited.wait(0.05)
        assert process.poll() is None, process.communicate()
        signed = client.post("/v1/sessions", {"username": "root", "password": PASSWORD})
        assert signed.status == 201
        status = client.as_(signed.json()["token"]).get("/v1/status")
        assert "api" in {item["component"] for item in status.json()["components"]}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, err
    assert "socket" in out and "database" in out  # the checks, handed to on_check
    assert not socket_path.exists()
