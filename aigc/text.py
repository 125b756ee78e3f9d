"""How the project writes numbers for people (no TensorFlow, no Streamlit): durations."""
from __future__ import annotations

import math


def duration(seconds: float, *, round_up: bool = False) -> str:
    """12 -> '12 s', 95 -> '1 min 35 s', 600 -> '10 min', 4000 -> '1 h 6 min'; round_up for a wait (never '0 s')."""
    seconds = max(0, math.ceil(seconds) if round_up else round(float(seconds)))
    if round_up:
        seconds = max(1, seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def counted(count: int, noun: str) -> str:
    """1 -> '1 epoch', 3 -> '3 epochs', 1875 -> '1,875 epochs' (the noun's plural adds an s)."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"
