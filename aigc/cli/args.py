"""What every command shares: argument types with messages for people, the one-line error parser, exit codes."""
from __future__ import annotations

import argparse
import math
import sys

EXIT_USAGE = 2  # bad input; train also exits 1 when the run failed and 3 (runs.lock.EXIT_BUSY) when another job trains


def bounded_int(low: int, high: int):
    """argparse type: an integer in [low, high], with a message that says so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number between {low} and {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value
    return parse


def _float_type(accepts, expected: str, allowed: str):
    """argparse type: a finite float that `accepts`; messages name what was `expected` and `allowed`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or not accepts(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value
    return parse


def positive_float(high: float):
    """argparse type: a finite float in (0, high]."""
    return _float_type(lambda v: 0 < v <= high, "a number", f"a number in (0, {high}]")


def float_between(low: float, high: float):
    """argparse type: a finite float in [low, high]."""
    return _float_type(lambda v: low <= v <= high, f"a number between {low} and {high}",
                       f"a number between {low} and {high}")


def help_with(text: str, default, low: float | None = None, high: float | None = None, *, whole: bool = True) -> str:
    """A flag's help with its default and limits, as the run-spec flags write them: 'text [default: 1; a whole number
    at least 1 and at most 10000]'."""
    if low is None:
        return f"{text} [default: {default}]"
    word = "a whole number" if whole else "a number"
    return f"{text} [default: {default}; {word} at least {_plain(low)} and at most {_plain(high)}]"


def _plain(value: float) -> str:
    """1000000000 and 0.5, not 1e+09 and 0.500000."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2), not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def digit_arg(text: str):
    """argparse type: 0..9, or 'any' (None) for a mix of digits."""
    if text.lower() in ("any", "none", "mix"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"digit must be 0-9 or 'any', got {text!r}") from None
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"digit must be 0-9 or 'any', got {value}")
    return value


def fail(message: str) -> int:
    """Print one line for the user on stderr; the usage exit code."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE
