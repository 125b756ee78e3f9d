"""Argument parsing and entry points of `train` and `generate` (TensorFlow imported late)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from aigc.engine.spec import PRESETS, TrainConfig

MAX_EPOCHS = 10_000
MAX_GENERATE = 10_000


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


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


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


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/default", help="run directory (created or resumed)")
    parser.add_argument("--epochs", type=bounded_int(0, MAX_EPOCHS), default=1, help="epochs to add on top of the run's")
    parser.add_argument("--resume", action="store_true", help="continue to the run's recorded total epochs")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="model preset (default: dcgan)")
    parser.add_argument("--batch-size", type=bounded_int(1, 65_536), default=128)
    parser.add_argument("--lr-g", type=positive_float(1.0), default=None, help="generator learning rate")
    parser.add_argument("--lr-d", type=positive_float(1.0), default=None, help="discriminator learning rate")
    parser.add_argument("--ema-decay", type=float_between(0.0, 0.99999), default=None,
                        help="EMA of generator weights (0 = off)")
    parser.add_argument("--loss", choices=("bce", "hinge"), default=None)
    parser.add_argument("--label-smoothing", type=float_between(0.0, 0.5), default=None)
    parser.add_argument("--data", default=None, help="MNIST .npz (default: $AIGC_MNIST, else Keras)")
    parser.add_argument("--init-from", default=None, help="start from these generator weights (e.g. checkpoints/generator.keras)")
    parser.add_argument("--max-steps", type=bounded_int(1, 10**9), default=None, help="stop this invocation after N steps")
    parser.add_argument("--train-limit", type=bounded_int(0, 10**7), default=0, help="use only the first N images")
    parser.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0)
    parser.add_argument("--eval-samples", type=bounded_int(0, 100_000), default=2000, help="samples for per-epoch quality (0 = off)")
    parser.add_argument("--log-every", type=bounded_int(1, 100_000), default=20, help="steps per metrics line")
    parser.add_argument("--checkpoint-seconds", type=positive_float(86_400), default=60.0)
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16"), default="auto")
    parser.add_argument("--threads", type=bounded_int(0, 1024), default=0, help="CPU threads for TensorFlow (0 = all)")
    parser.add_argument("--nice", type=bounded_int(0, 19), default=0, help="lower the trainer's CPU priority")
    parser.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    parser.add_argument("--discriminator", choices=("projection", "concat"), default=None,
                        help="dcgan discriminator's conditioning for a new run (default: projection)")
    parser.add_argument("--spectral-norm", action="store_true", help="dcgan: spectral normalization in D (new run)")
    parser.add_argument("--keep-every", type=bounded_int(0, MAX_EPOCHS), default=0,
                        help="also keep generators/epoch_NNNN.keras every N epochs (0 = off)")


def train_main(args: argparse.Namespace) -> int:
    from aigc.runs.lock import TrainingLock

    run_dir = Path(args.run_dir)
    problem = _train_input_problem(args, run_dir)
    if problem:
        return _fail(problem)
    # Both locks are taken before TensorFlow is imported, so a second job is refused at once.
    global_lock, run_lock = TrainingLock(run_dir.parent), TrainingLock(run_dir)
    try:
        if not global_lock.acquire(run_dir):
            holder = global_lock.holder() or {}
            return _fail(f"another training job is running (pid {holder.get('pid')}, {holder.get('run_dir')})")
        if not run_lock.acquire(run_dir):
            global_lock.release()
            return _fail(f"{run_dir} is being trained by another process")
    except OSError as error:
        global_lock.release()
        return _fail(f"cannot write to {run_dir}: {error.strerror or error}")
    try:
        cfg = TrainConfig(run_dir=str(run_dir), epochs=args.epochs, preset=args.preset or "dcgan",
                          batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d, ema_decay=args.ema_decay,
                          loss=args.loss, label_smoothing=args.label_smoothing, data=args.data,
                          init_from=args.init_from, max_steps=args.max_steps, seed=args.seed,
                          eval_samples=args.eval_samples, checkpoint_seconds=args.checkpoint_seconds, log_every=args.log_every,
                          precision=args.precision, threads=args.threads, nice=args.nice, resume=args.resume,
                          train_limit=args.train_limit,
                          extra={"jit": args.jit, "keep_every": args.keep_every, "preset_defaulted": args.preset is None,
                                 "discriminator": args.discriminator, "spectral_norm": args.spectral_norm or None})
        from aigc.engine.trainer import main_guarded

        return main_guarded(cfg)
    finally:
        run_lock.release()
        global_lock.release()


def _train_input_problem(args: argparse.Namespace, run_dir: Path) -> str | None:
    """The first thing wrong with train's inputs that would otherwise surface only after TensorFlow loads."""
    if args.epochs == 0 and not args.resume:
        return "--epochs must be at least 1 (or use --resume to continue to the run's recorded total)"
    if run_dir.exists() and not run_dir.is_dir():
        return f"--run-dir is a file, not a folder: {run_dir}"
    if args.init_from and not Path(args.init_from).is_file():
        return f"--init-from: file not found: {args.init_from}"
    if args.data and not Path(args.data).expanduser().is_file():
        return f"--data: file not found: {args.data}"
    return None


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=bounded_int(1, MAX_GENERATE), default=64, help="how many digits")
    parser.add_argument("--digit", type=digit_arg, default=None, help="0-9 or 'any' (default)")
    parser.add_argument("--seed", type=bounded_int(0, 2**63 - 1), default=0)
    parser.add_argument("--truncation", type=positive_float(2.0), default=1.0, help="latent scale in (0, 2]")
    parser.add_argument("--ncol", type=bounded_int(1, 100), default=None, help="grid columns (PNG)")
    parser.add_argument("--scale", type=bounded_int(1, 16), default=2, help="PNG upscaling (nearest neighbour)")
    parser.add_argument("--checkpoint", default=None, help="generator .keras (default: the shipped one)")
    parser.add_argument("--out", default="grid.png", help="a .png grid or an .npz with x (N,28,28) in [0,1] and y")


def generate_main(args: argparse.Namespace) -> int:
    import numpy as np

    from aigc.engine.checkpoints import SHIPPED_GENERATOR, CheckpointError, load_generator
    from aigc.engine.sampling import generate, grid

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        return _fail(f"--out must end in .png or .npz, got {out.name!r}")
    if not out.parent.exists():
        return _fail(f"--out: folder does not exist: {out.parent}")
    try:
        generator, config, _card = load_generator(args.checkpoint or SHIPPED_GENERATOR)
    except CheckpointError as error:
        return _fail(str(error))
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
        return _fail(f"could not write {out}: {error.strerror or error}")
    print(f"wrote {len(images)} digits to {out}")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
