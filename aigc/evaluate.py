"""Placeholder: filled in by its issue."""


def add_arguments(parser):
    pass


def main(args):
    print("error: not implemented yet")
    return 2
