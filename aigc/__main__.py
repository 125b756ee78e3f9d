"""CLI: python -m aigc (or the installed `aigc`) train | generate | eval | bench.

Every user error is one line on stderr and a non-zero exit code, never a traceback. TensorFlow's C++
start-up noise is kept off the terminal unless --verbose is given (aigc.quiet).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from aigc.quiet import quiet_tensorflow
from aigc.cli import OneLineErrorParser, add_generate_arguments, add_train_arguments, generate_main, train_main

COMMANDS = {
    "train": ("Train (or resume) a GAN into a run directory.", add_train_arguments, train_main),
    "generate": ("Write a grid PNG or an .npz of generated digits.", add_generate_arguments, generate_main),
    "eval": ("Measure a generator's quality with the shipped evaluator.", "aigc.quality.evaluate", None),
    "bench": ("Benchmark training and generation side by side.", "aigc.bench.main", None),
}
VERBOSE_HELP = "keep TensorFlow's C++ logging (CUDA probes, grappler notes); also for the trainer it starts"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=_prog(), description="AIGC digits: a GAN for MNIST.")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _main) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        if isinstance(add_arguments, str):
            add_arguments = importlib.import_module(add_arguments).add_arguments
        add_arguments(command)
    return parser


def _prog() -> str:
    """'aigc' when run as the installed command, 'python -m aigc' otherwise (what the user typed)."""
    return "python -m aigc" if sys.argv[0].endswith("__main__.py") else "aigc"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow(keep=args.verbose)  # before any command imports TensorFlow
    _help, add_arguments, command_main = COMMANDS[args.command]
    if command_main is None:
        command_main = importlib.import_module(add_arguments).main
    return command_main(args)


if __name__ == "__main__":
    sys.exit(main())
