"""`python -m aigc generate`: a grid PNG or an .npz of generated digits."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aigc import settings
from aigc.cli.args import bounded_int, digit_arg, fail, help_with, positive_float
from aigc.text import counted
from aigc.explore.params import SCALE_MAX, SEED_MAX, SEED_MIN  # the page's bounds: a seed means the same grid

MAX_GENERATE = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=bounded_int(1, MAX_GENERATE), default=64,
                        help=help_with("how many digits", 64, 1, MAX_GENERATE))
    parser.add_argument("--digit", type=digit_arg, default=None, help=help_with("0-9, or 'any' for a mix", "any"))
    parser.add_argument("--seed", type=bounded_int(SEED_MIN, SEED_MAX), default=0,
                        help=help_with("latent seed: the same seed draws the same grid", 0, SEED_MIN, SEED_MAX))
    parser.add_argument("--truncation", type=positive_float(SCALE_MAX), default=1.0,
                        help=help_with(f"latent scale, in (0, {SCALE_MAX:g}]", 1))
    parser.add_argument("--ncol", type=bounded_int(1, 100), default=None,
                        help=help_with("grid columns (PNG)", "10, or --n when fewer", 1, 100))
    parser.add_argument("--scale", type=bounded_int(1, 16), default=2,
                        help=help_with("PNG upscaling (nearest neighbour)", 2, 1, 16))
    parser.add_argument("--checkpoint", default=None, help=help_with("generator .keras", "the shipped one"))
    parser.add_argument("--out", default="grid.png",
                        help=help_with("a .png grid or an .npz with x (N,28,28) in [0,1] and y", "grid.png"))

def main(args: argparse.Namespace) -> int:
    import numpy as np

    from aigc.engine.checkpoints import CheckpointError, load_generator
    from aigc.engine.sampling import generate, grid

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        return fail(f"--out must end in .png or .npz, got {out.name!r}")
    if not out.parent.exists():
        return fail(f"--out: folder does not exist: {out.parent}")
    try:
        generator, config, _card = load_generator(args.checkpoint or settings.shipped_generator())
    except CheckpointError as error:
        return fail(str(error))
    if args.digit is not None and not config.conditional:
        print(f"note: the {config.preset!r} generator is unconditional; --digit {args.digit} is ignored", file=sys.stderr)
    images, labels = generate(generator, args.n, args.digit if config.conditional else None, seed=args.seed,
                              truncation=args.truncation, config=config)
    try:
        if out.suffix.lower() == ".npz":
            y = labels if config.conditional else np.full(len(images), -1, np.int32)
            np.savez_compressed(out, x=images.astype(np.float32), y=y.astype(np.int64))
        else:
            grid(images, args.ncol or min(10, args.n), scale=args.scale).save(out)
    except OSError as error:
        return fail(f"could not write {out}: {error.strerror or error}")
    print(f"wrote {counted(len(images), 'digit')} to {out}")
    return 0
