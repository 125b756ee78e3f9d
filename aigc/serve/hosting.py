"""Hosted-demo policy: who may train, how much, and what a visitor may be told.

No Streamlit: the policy is plain data read from the environment or from a mapping of secrets,
so it is unit-tested without a server (the frame passes Streamlit's secrets and server.address).
"""
from __future__ import annotations

import hmac
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Mapping

from aigc import settings
from aigc.engine.spec import MAX_EPOCHS  # the run spec's own ceiling
from aigc.serve.trust import is_loopback_ip
from aigc.settings import without_paths

LOG = logging.getLogger("aigc.serve.hosting")
TRAINING_MODES = ("on", "off", "password")
DEFAULT_MAX_EPOCHS = 100
HOSTED_COOLDOWN_S = 60.0  # between jobs, unless the app is local (loopback, training on)
HOSTED_KEEP_RUNS = 10  # finished runs kept on a hosted server (each is 25-44 MB); 0 = keep all
HOSTED_MIN_FREE_MB = 1024  # a job needs this much free disk under the runs root on a hosted server
LOCAL_MIN_FREE_MB = 256
LOOPBACK_NAMES = ("localhost", "localhost.")

@dataclass(frozen=True)
class Policy:
    """What this deployment allows: training mode, caps, cooldown, runs kept, and whether it is local."""

    training: str = "on"
    password: str = ""
    max_epochs: int = DEFAULT_MAX_EPOCHS
    cooldown_s: float = 0.0
    notices: tuple[str, ...] = ()
    loopback: bool = True  # the server listens on localhost only (streamlit's server.address)
    keep_runs: int = 0  # finished/stopped/failed runs kept; the oldest beyond it are pruned (0 = keep all)
    min_free_mb: int = LOCAL_MIN_FREE_MB  # free disk a job needs before it starts

    @property
    def training_visible(self) -> bool:
        return self.training != "off"

    @property
    def needs_password(self) -> bool:
        return self.training == "password"

    @property
    def hosted(self) -> bool:
        """True unless this is one person's local app (loopback and training on): then no paths, logs, pids."""
        return not (self.loopback and self.training == "on")

    @property
    def allows_server_paths(self) -> bool:
        """True only for the local app: a visitor may name a file on the server (e.g. the MNIST .npz)."""
        return not self.hosted

    @property
    def shows_details(self) -> bool:
        """True only for the local app: server paths, tracebacks and train.log may be shown."""
        return not self.hosted


def is_loopback(address: str | None) -> bool:
    """True for localhost / 127.x / ::1; False for '' (every interface), 0.0.0.0, :: and other hosts."""
    text = (address or "").strip().strip("[]").lower()
    return text in LOOPBACK_NAMES or is_loopback_ip(text)


def load_policy(*, env: Mapping[str, str] | None = None, secrets: Mapping | None = None,
                address: str | None = None) -> Policy:
    """The Policy from secrets (first) or the environment; bad values fall back safely with a notice.

    Unset $AIGC_TRAINING means 'on' only when the server listens on loopback (address: streamlit's
    server.address; None or '' means every interface), else 'off': a server reachable by others is safe by default.
    """
    env = os.environ if env is None else env
    secrets = secrets or {}
    loopback = is_loopback(address)

    def setting(name: str) -> str:
        value = secrets.get(name)
        return str(value if value is not None else env.get(name, "")).strip()

    notices = []
    mode = setting(settings.TRAINING_ENV).lower() or ("on" if loopback else "off")
    password = setting(settings.TRAINING_PASSWORD_ENV)
    if mode not in TRAINING_MODES:
        notices.append(f"{settings.TRAINING_ENV}={mode!r} is not one of {', '.join(TRAINING_MODES)}; training is off.")
        mode = "off"
    if mode == "password" and not password:
        notices.append(f"{settings.TRAINING_ENV}=password but {settings.TRAINING_PASSWORD_ENV} is empty; "
                       "training is off.")
        mode = "off"
    hosted = not (loopback and mode == "on")

    def number(name: str, default, low, high, kind):
        return _number(setting(name), default, low, high, kind, notices, name)

    max_epochs = number(settings.MAX_EPOCHS_ENV, DEFAULT_MAX_EPOCHS, 1, MAX_EPOCHS, int)
    cooldown = number(settings.COOLDOWN_ENV, HOSTED_COOLDOWN_S if hosted else 0.0, 0.0, 86_400.0, float)
    keep_runs = number(settings.KEEP_RUNS_ENV, HOSTED_KEEP_RUNS if hosted else 0, 0, 100_000, int)
    min_free_mb = number(settings.MIN_FREE_MB_ENV, HOSTED_MIN_FREE_MB if hosted else LOCAL_MIN_FREE_MB, 0,
                         10_000_000, int)
    return Policy(training=mode, password=password, max_epochs=max_epochs, cooldown_s=cooldown,
                  notices=tuple(notices), loopback=loopback, keep_runs=keep_runs, min_free_mb=min_free_mb)


def _number(text: str, default, low, high, kind, notices: list, name: str):
    if not text:
        return default
    try:
        value = float(text)
        if kind is int:
            if not value.is_integer():
                raise ValueError(text)
            value = int(value)
    except (ValueError, OverflowError):
        notices.append(f"{name}={text!r} is not a {'whole ' if kind is int else ''}number; using {default}.")
        return default
    if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
        notices.append(f"{name}={text!r} is outside {low}..{high}; using {default}.")
        return default
    return value


def password_ok(given: str | None, policy: Policy) -> bool:
    """Constant-time comparison of a typed password with AIGC_TRAINING_PASSWORD."""
    if not policy.password or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), policy.password.encode("utf-8"))


_PID = r"\bpid\s*[=:#]?\s*\d+"  # pid 777, pid=777, pid: 777, pid #777
_PIDS = [re.compile(pattern, re.IGNORECASE) for pattern in
         (rf"\s*\(\s*{_PID}\s*\)", rf"{_PID},\s*", rf",\s*{_PID}", rf"\s*{_PID}")]


def visitor_message(message: str, policy: Policy, *, limit: int = 300) -> str:
    """A message fit for this server's visitors: one line; hosted, also no absolute paths (basename kept) or pids."""
    text = " ".join(str(message).split())
    if policy.hosted:
        text = without_paths(text)
        for pattern in _PIDS:
            text = pattern.sub("", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def clamp_epochs(epochs, policy: Policy) -> tuple[int | None, str | None]:
    """(epochs, None) when 1..max_epochs, else (None, message) saying what is allowed."""
    try:
        value = float(epochs)
    except (TypeError, ValueError):
        return None, f"epochs must be a whole number between 1 and {policy.max_epochs}, got {epochs!r}"
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= policy.max_epochs:
        return None, f"epochs must be a whole number between 1 and {policy.max_epochs}, got {epochs!r}"
    return int(value), None
