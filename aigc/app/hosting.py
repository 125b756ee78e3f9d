"""Hosted-demo policy: who may train, how much, and the bounds of every Generate input.

No Streamlit import at module level: the policy is plain data read from the environment or
from a mapping of secrets, so it is unit-tested without a server.
"""
from __future__ import annotations

import hmac
import math
import os
from dataclasses import dataclass
from typing import Mapping

TRAINING_MODES = ("on", "off", "password")
DEFAULT_MAX_EPOCHS = 100
HARD_MAX_EPOCHS = 10_000  # the CLI's own ceiling
DEFAULT_COOLDOWN_S = {"on": 0.0, "off": 0.0, "password": 60.0}

# Bounds of Generate inputs (widgets and URL query parameters alike).
N_MIN, N_MAX, N_DEFAULT = 1, 100, 16
SEED_MIN, SEED_MAX, SEED_DEFAULT = 0, 2**31 - 1, 0
TRUNCATION_MIN, TRUNCATION_MAX, TRUNCATION_DEFAULT = 0.1, 2.0, 1.0
STEPS_MIN, STEPS_MAX, STEPS_DEFAULT = 2, 30, 10
DIGITS = tuple(range(10))


@dataclass(frozen=True)
class Policy:
    """What this deployment allows: training mode, per-job epoch cap, cooldown between jobs."""

    training: str = "on"
    password: str = ""
    max_epochs: int = DEFAULT_MAX_EPOCHS
    cooldown_s: float = 0.0
    notices: tuple[str, ...] = ()

    @property
    def training_visible(self) -> bool:
        return self.training != "off"

    @property
    def needs_password(self) -> bool:
        return self.training == "password"


def load_policy(*, env: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> Policy:
    """The Policy from secrets (first) or the environment; bad values fall back safely with a notice."""
    env = os.environ if env is None else env
    secrets = secrets or {}

    def setting(name: str) -> str:
        value = secrets.get(name)
        return str(value if value is not None else env.get(name, "")).strip()

    notices = []
    mode = setting("AIGC_TRAINING").lower() or "on"
    password = setting("AIGC_TRAINING_PASSWORD")
    if mode not in TRAINING_MODES:
        notices.append(f"AIGC_TRAINING={mode!r} is not one of {', '.join(TRAINING_MODES)}; training is off.")
        mode = "off"
    if mode == "password" and not password:
        notices.append("AIGC_TRAINING=password but AIGC_TRAINING_PASSWORD is empty; training is off.")
        mode = "off"
    max_epochs = _number(setting("AIGC_MAX_EPOCHS"), DEFAULT_MAX_EPOCHS, 1, HARD_MAX_EPOCHS, int, notices,
                         "AIGC_MAX_EPOCHS")
    cooldown = _number(setting("AIGC_COOLDOWN_S"), DEFAULT_COOLDOWN_S[mode], 0.0, 86_400.0, float, notices,
                       "AIGC_COOLDOWN_S")
    return Policy(training=mode, password=password, max_epochs=max_epochs, cooldown_s=cooldown,
                  notices=tuple(notices))


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


def streamlit_secrets() -> dict:
    """st.secrets as a plain dict; {} when there is no secrets file (not an error)."""
    try:
        import streamlit as st

        if not st.secrets.load_if_toml_exists():
            return {}
        return {key: st.secrets[key] for key in st.secrets if key.startswith("AIGC_")}
    except Exception:  # noqa: BLE001  (a broken secrets file must not take the page down)
        return {}


def password_ok(given: str | None, policy: Policy) -> bool:
    """Constant-time comparison of a typed password with AIGC_TRAINING_PASSWORD."""
    if not policy.password or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), policy.password.encode("utf-8"))


def clamp_epochs(epochs, policy: Policy) -> tuple[int | None, str | None]:
    """(epochs, None) when 1..max_epochs, else (None, message) saying what is allowed."""
    try:
        value = float(epochs)
    except (TypeError, ValueError):
        return None, f"epochs must be a whole number between 1 and {policy.max_epochs}, got {epochs!r}"
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= policy.max_epochs:
        return None, f"epochs must be a whole number between 1 and {policy.max_epochs}, got {epochs!r}"
    return int(value), None


def parse_generate_params(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """URL query parameters digit, n, seed -> ({'digit': int|None, 'n', 'seed'}, notices for bad ones)."""
    values = {"digit": None, "n": N_DEFAULT, "seed": SEED_DEFAULT}
    notices = []
    raw_digit = params.get("digit")
    if raw_digit is not None:
        digit = _parse_int(raw_digit, 0, 9)
        if str(raw_digit).strip().lower() in ("any", "mix", ""):
            values["digit"] = None
        elif digit is None:
            notices.append(f"digit={_short(raw_digit)} is not 0-9 or 'any'; showing any digit.")
        else:
            values["digit"] = digit
    for name, low, high in (("n", N_MIN, N_MAX), ("seed", SEED_MIN, SEED_MAX)):
        raw = params.get(name)
        if raw is None:
            continue
        parsed = _parse_int(raw, low, high)
        if parsed is None:
            notices.append(f"{name}={_short(raw)} is not a whole number between {low} and {high}; "
                           f"using {values[name]}.")
        else:
            values[name] = parsed
    return values, notices


def _parse_int(raw, low: int, high: int) -> int | None:
    text = str(raw).strip()
    if not text or len(text) > 20 or not text.lstrip("+-").isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def _short(raw) -> str:
    text = str(raw)
    return repr(text if len(text) <= 24 else text[:21] + "...")


def bounded_generate_inputs(*, n, seed, truncation, steps=STEPS_DEFAULT) -> dict:
    """Clamp widget values into the allowed bounds (a defence in depth behind the widgets' own limits)."""
    def clamp(value, low, high, default, kind):
        try:
            value = kind(value)
        except (TypeError, ValueError, OverflowError):
            return default
        if isinstance(value, float) and not math.isfinite(value):
            return default
        return min(max(value, low), high)

    return {"n": clamp(n, N_MIN, N_MAX, N_DEFAULT, int),
            "seed": clamp(seed, SEED_MIN, SEED_MAX, SEED_DEFAULT, int),
            "truncation": clamp(truncation, TRUNCATION_MIN, TRUNCATION_MAX, TRUNCATION_DEFAULT, float),
            "steps": clamp(steps, STEPS_MIN, STEPS_MAX, STEPS_DEFAULT, int)}
