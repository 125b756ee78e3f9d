"""CLI: python -m aigc (or the installed `aigc`) train | generate | eval | bench.

Every user error is one line on stderr and a non-zero exit code, never a traceback. TensorFlow's C++
start-up noise is kept off the terminal unless --verbose is given (aigc.quiet).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from aigc import signals
from aigc.quiet import quiet_tensorflow
from aigc.cli.args import OneLineErrorParser

# name: (help, the module with add_arguments(parser) and main(args)); a command's module loads only when it runs.
COMMANDS = {
    "train": ("Train (or resume) a GAN into a run directory.", "aigc.cli.train"),
    "generate": ("Write a grid PNG or an .npz of generated digits.", "aigc.cli.generate"),
    "eval": ("Measure a generator's quality with the shipped evaluator.", "aigc.cli.eval"),
    "bench": ("Benchmark training and generation side by side (the repository's bench/).", "aigc.cli.bench"),
}
VERBOSE_HELP = "keep TensorFlow's C++ logging (CUDA probes, grappler notes); also for the trainer it starts"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=_prog(), description="AIGC digits: a GAN for MNIST.")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, module) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        importlib.import_module(module).add_arguments(command)
    return parser


def _prog() -> str:
    """'aigc' when run as the installed command, 'python -m aigc' otherwise (what the user typed)."""
    return "python -m aigc" if sys.argv[0].endswith("__main__.py") else "aigc"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow(keep=args.verbose)  # before any command imports TensorFlow
    if args.command != "train":
        signals.release()  # only the trainer turns a SIGTERM into a recorded stop
    return importlib.import_module(COMMANDS[args.command][1]).main(args)
