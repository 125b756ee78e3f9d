"""The Train page's remembered unlock: a signed token that a browser keeps in a cookie (no Streamlit).

After the right training password the page puts one token in that session's page, and a script stores
it as a cookie; a reload or a second tab sends it back with its websocket handshake, and a valid token
unlocks without the form. Every input is forged on a hosted server, so a token is only as good as
its MAC:

    token = "1.<expiry, unix s>.<nonce, 32 hex>.<HMAC-SHA256, 64 hex>"
    MAC   = HMAC(key, version, expiry, nonce and the visitor's client key)
    key   = HMAC(server secret, the training password)

The key needs the server secret, so a stolen cookie allows no offline search for the password;
it needs the password too, so changing the password voids every token. The client key binds a token
to the address its guesses count under (serve/trust.py): a cookie copied to another address fails.
The server secret is $AIGC_SECRET, else a random file in the runs root shared by every replica on that
volume (created once, atomically, mode 0600), else, where the runs root is not writable, a random
secret of this process (tokens then die with the process and differ between replicas).
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path

from aigc import settings

LOG = logging.getLogger("aigc.serve.unlock")
COOKIE = "aigc_unlock"  # the cookie's name in the browser
LIFETIME_S = 12 * 3600  # how long a remembered unlock lasts
VERSION = "1"
MAX_TOKEN_CHARS = 200  # anything longer is garbage without being parsed
SECRET_FILE = ".unlock-secret"  # in the runs root, shared by the replicas that share the runs volume
SECRET_BYTES = 32
_TOKEN = re.compile(r"1\.([0-9]{10})\.([0-9a-f]{32})\.([0-9a-f]{64})", re.ASCII)
_KEY_LABEL = b"aigc unlock key v1\x00"
_PROCESS_SECRET = secrets.token_bytes(SECRET_BYTES)  # the last resort: this process only
_FILE_SECRETS: dict[Path, bytes] = {}  # runs root -> its secret file's bytes, read once per process
_LOCK = threading.Lock()


def mint(client: str, password: str, *, now: float | None = None) -> str:
    """A token for this client, valid LIFETIME_S from now, under the current password and server secret."""
    expiry = f"{int(time.time() if now is None else now) + LIFETIME_S:010d}"
    nonce = secrets.token_hex(16)
    return f"{VERSION}.{expiry}.{nonce}.{_mac(password, expiry, nonce, client)}"


def check(token, client: str, password: str, *, now: float | None = None) -> bool:
    """True only for an unexpired token minted for this client under this password and server secret; never raises."""
    try:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not password:
            return False
        match = _TOKEN.fullmatch(token)
        if match is None:
            return False
        expiry, nonce, given = match.groups()
        left = int(expiry) - (time.time() if now is None else now)
        if not 0 < left <= LIFETIME_S + 60:  # expired, or longer-lived than any token this server mints
            return False
        return hmac.compare_digest(given, _mac(password, expiry, nonce, client))
    except Exception:  # noqa: BLE001  (a forged value must never cost the visitor a traceback)
        LOG.warning("unlock token check failed", exc_info=True)
        return False


def _mac(password: str, expiry: str, nonce: str, client: str) -> str:
    key = hmac.new(server_secret(), _KEY_LABEL + password.encode("utf-8"), hashlib.sha256).digest()
    message = "\n".join((VERSION, expiry, nonce, str(client))).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def server_secret() -> bytes:
    """$AIGC_SECRET, else the runs root's secret file (made on first use), else this process's random secret."""
    given = settings.env(settings.SECRET_ENV)
    if given:
        return given.encode("utf-8")
    root = settings.runs_root()
    with _LOCK:
        known = _FILE_SECRETS.get(root)
        if known is None:
            known = _FILE_SECRETS[root] = _file_secret(root / SECRET_FILE) or _PROCESS_SECRET
        return known


def _file_secret(path: Path) -> bytes | None:
    """The secret file's bytes, created first when missing; None (logged) when it can be neither read nor made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_once(path)
        if path.stat().st_mode & 0o077:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
            LOG.warning("%s was readable by others; it should be mode 0600", path.name)
        with open(path, "rb") as handle:
            data = handle.read(4096)
    except OSError as error:
        LOG.warning("unlock secret: cannot read or create %s in the runs root (%s); remembered unlocks last "
                    "only as long as this process", SECRET_FILE, error.strerror or type(error).__name__)
        return None
    if len(data) < SECRET_BYTES:
        LOG.warning("unlock secret: %s holds %d bytes, fewer than %d; remembered unlocks last only as long as "
                    "this process (delete the file to make a new one)", SECRET_FILE, len(data), SECRET_BYTES)
        return None
    return data


def _create_once(path: Path) -> None:
    """Make path with fresh random bytes, mode 0600, unless it exists; a reader never sees it half written.

    The bytes go to a private temporary file first (O_EXCL, 0600), which is then hard-linked to path:
    link() fails when path exists (another replica won the race, and its file is used), like O_EXCL, but
    only a whole file ever appears. A file system without hard links gets path itself made with O_EXCL.
    """
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new(tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links here (some network or FUSE file systems)
        with contextlib.suppress(FileExistsError):
            _write_new(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _write_new(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
