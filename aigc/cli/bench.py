"""`python -m aigc bench`: the benchmarks live in the repository's bench/ folder, outside the package the image ships."""
from __future__ import annotations

import argparse
import importlib

from aigc.cli.args import fail

MISSING = ("the benchmarks are not part of this install: run `python -m aigc bench` from a clone of the "
           "repository (they live in its bench/ folder)")


def _bench():
    """The repository's bench.main module, or None when this install has no bench/ (the Docker image, a wheel)."""
    try:
        return importlib.import_module("bench.main")
    except ModuleNotFoundError as error:
        if error.name not in ("bench", "bench.main"):
            raise
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    bench = _bench()
    if bench is not None:
        bench.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    bench = _bench()
    return fail(MISSING) if bench is None else bench.main(args)
