"""The bounds of every Generate / Write input and the one parser of link parameters.

Every URL value is forged input: it is parsed into a bounded value, or replaced by the default with
a notice saying why. Widgets use the same bounds, and bounded_generate_inputs clamps what they return.
"""
from __future__ import annotations

import math
from typing import Mapping

from aigc.explore.directions import NAMES, SLIDER_MAX, SLIDER_MIN
from aigc.explore.layout import ROWS_MAX, ROWS_MIN, parse_number

TEXT_MAX_CHARS = 64  # raw text looked at, before the 16-digit rule
NUMBER_MAX_CHARS = 24  # a longer number is refused, never cut to a shorter one
N_MIN, N_MAX, N_DEFAULT = 1, 100, 16  # digits in a Generate grid
SEED_MIN, SEED_MAX, SEED_DEFAULT = 0, 2**31 - 1, 0
SCALE_MIN, SCALE_MAX, SCALE_DEFAULT = 0.1, 2.0, 1.0  # latent scale (truncation)
STEPS_MIN, STEPS_MAX, STEPS_DEFAULT = 2, 30, 10  # frames of an interpolation
DIGITS = tuple(range(10))
MARKDOWN_CHARS = frozenset("\\`*_[]()<>#!|~$:{}&")  # escaped in a shown value: no link, emphasis, code, icon or HTML
WRITE_DEFAULTS = {"text": "2026", "rows": 3, "seed": SEED_DEFAULT, "scale": SCALE_DEFAULT, **{name: 0.0 for name in NAMES}}


def _short(raw) -> str:
    """A forged value shortened and quoted for a notice rendered as markdown: its markdown characters escaped."""
    text = str(raw)
    shown = repr(text[:12] + ("..." if len(text) > 12 else ""))
    return "".join("\\" + c if c in MARKDOWN_CHARS else c for c in shown)


def bounded_number(raw, low: float, high: float, *, whole: bool, step: float = 0.0) -> float | int | None:
    """raw (str) -> a finite number in [low, high] (int when whole, rounded to step when > 0), or None."""
    text = str(raw).strip()
    if len(text) > NUMBER_MAX_CHARS or not text.isascii():  # int() reads '٧' and '７' as 7: 0-9 only
        return None
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return round(round(value / step) * step, 6) if step and not whole else value


def parse_slider_params(params: Mapping[str, str], notices: list) -> dict:
    """{name: value in [SLIDER_MIN, SLIDER_MAX] rounded to 0.1} for the style directions present in params."""
    values = {}
    for name in NAMES:
        if params.get(name) is None:
            continue
        value = bounded_number(params[name], SLIDER_MIN, SLIDER_MAX, whole=False, step=0.1)
        if value is None:
            notices.append(f"{name}={_short(params[name])} is not a number between {SLIDER_MIN} and {SLIDER_MAX}; using 0.")
        else:
            values[name] = value
    return values


def parse_scale(params: Mapping[str, str], notices: list, default: float = SCALE_DEFAULT) -> float:
    """The latent scale (truncation) in [0.1, 2.0], rounded to 0.05; default with a notice when bad."""
    if params.get("scale") is None:
        return default
    value = bounded_number(params["scale"], SCALE_MIN, SCALE_MAX, whole=False, step=0.05)
    if value is None:
        notices.append(f"scale={_short(params['scale'])} is not between {SCALE_MIN} and {SCALE_MAX}; using {default}.")
        return default
    return value


def parse_write_params(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """URL text, rows, seed, scale and sliders -> (bounded values, notices); missing keys take WRITE_DEFAULTS."""
    values, notices = dict(WRITE_DEFAULTS), []
    if params.get("text") is not None:
        digits, problem = parse_number(str(params["text"])[:TEXT_MAX_CHARS])
        if problem:
            notices.append(f"text={_short(params['text'])}: {problem}")
        else:
            values["text"] = digits
    _parse_whole(params, values, notices, (("rows", ROWS_MIN, ROWS_MAX), ("seed", SEED_MIN, SEED_MAX)))
    values["scale"] = parse_scale(params, notices)
    values.update(parse_slider_params(params, notices))
    return values, notices


def _parse_whole(params: Mapping[str, str], values: dict, notices: list, bounds) -> None:
    """values[name] = the whole number params[name] for each (name, low, high) present; a notice for a bad one."""
    for name, low, high in bounds:
        if params.get(name) is None:
            continue
        parsed = bounded_number(params[name], low, high, whole=True)
        if parsed is None:
            notices.append(f"{name}={_short(params[name])} is not a whole number between {low} and {high}; "
                           f"using {values[name]}.")
        else:
            values[name] = parsed


def parse_generate_params(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """URL digit, n, seed -> ({'digit': int | None, 'n', 'seed'}, notices for bad ones); missing keys take defaults."""
    values, notices = {"digit": None, "n": N_DEFAULT, "seed": SEED_DEFAULT}, []
    raw_digit = params.get("digit")
    if raw_digit is not None and str(raw_digit).strip().lower() not in ("any", "mix", ""):
        digit = bounded_number(raw_digit, DIGITS[0], DIGITS[-1], whole=True)
        if digit is None:
            notices.append(f"digit={_short(raw_digit)} is not 0-9 or 'any'; showing any digit.")
        values["digit"] = digit
    _parse_whole(params, values, notices, (("n", N_MIN, N_MAX), ("seed", SEED_MIN, SEED_MAX)))
    return values, notices


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
            "truncation": clamp(truncation, SCALE_MIN, SCALE_MAX, SCALE_DEFAULT, float),
            "steps": clamp(steps, STEPS_MIN, STEPS_MAX, STEPS_DEFAULT, int)}


def write_query(values: Mapping) -> dict[str, str]:
    """The URL parameters that reproduce a Write-a-number page (sliders only when moved)."""
    query = {"text": str(values["text"]), "rows": str(int(values["rows"])), "seed": str(int(values["seed"])),
             "scale": f"{float(values['scale']):g}"}
    query.update({name: f"{float(values[name]):g}" for name in NAMES if float(values.get(name, 0.0)) != 0.0})
    return query


def query_extras(params) -> tuple[float, dict, list[str]]:
    """(latent scale, slider values, notices) from the URL's scale and ink/slant/width (forged values -> defaults)."""
    notices: list[str] = []
    raw = {key: params.get(key) for key in ("scale",) + NAMES if params.get(key) is not None}
    return parse_scale(raw, notices), parse_slider_params(raw, notices), notices


def full_query(values: dict, sliders: dict, generator_label: str | None) -> dict:
    """URL parameters that reproduce the Generate grid, including scale, generator and moved sliders."""
    query = {"digit": "any" if values["digit"] is None else str(values["digit"]),
             "n": str(values["n"]), "seed": str(values["seed"]), "scale": f"{float(values['truncation']):g}"}
    if generator_label:
        query["generator"] = generator_label
    query.update({name: f"{value:g}" for name, value in sliders.items() if value})
    return query
