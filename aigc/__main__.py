"""CLI: python -m aigc train | generate | eval | bench.

Every user error is one line on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from aigc.cli import OneLineErrorParser, add_generate_arguments, add_train_arguments, generate_main, train_main

COMMANDS = {
    "train": ("Train (or resume) a GAN into a run directory.", add_train_arguments, train_main),
    "generate": ("Write a grid PNG or an .npz of generated digits.", add_generate_arguments, generate_main),
    "eval": ("Measure a generator's quality with the shipped evaluator.", "aigc.quality.evaluate", None),
    "bench": ("Benchmark training and generation side by side.", "aigc.bench.main", None),
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m aigc", description="AIGC digits: a GAN for MNIST.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _main) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if isinstance(add_arguments, str):
            add_arguments = importlib.import_module(add_arguments).add_arguments
        add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
    args = build_parser().parse_args(argv)
    _help, add_arguments, command_main = COMMANDS[args.command]
    if command_main is None:
        command_main = importlib.import_module(add_arguments).main
    return command_main(args)


if __name__ == "__main__":
    sys.exit(main())
