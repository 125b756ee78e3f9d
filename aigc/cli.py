"""Argument parsing and entry points of `train` and `generate` (TensorFlow imported late)."""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from aigc import settings
from aigc.engine.cluster import TF_CONFIG, ClusterError, Role, cluster_from_env, tf_config_from_flags
from aigc.engine.data import DataError, check_file
from aigc.engine.run_plan import Invocation, make_plan, save_plan
from aigc.engine.spec import MAX_EPOCHS, SpecError, add_spec_arguments, given_settings
from aigc.runs.lock import TrainingLock

MAX_GENERATE = 10_000
COLLECTIVE_TIMEOUT_S = 300.0  # longer than any chief-only pause (samples, evaluation) the others wait through
EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3  # train's exit codes besides 0 (finished or stopped)


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
    """train's flags: where and how long (this invocation), then one flag per run-spec setting."""
    parser.add_argument("--run-dir", default="runs/default", help="run directory (created, or continued)")
    parser.add_argument("--epochs", type=bounded_int(1, MAX_EPOCHS), default=None,
                        help="epochs to train: a new run's total, or epochs to add to an existing run (default 1)")
    parser.add_argument("--resume", action="store_true", help="continue to the run's recorded total epochs")
    parser.add_argument("--max-steps", type=bounded_int(1, 10**9), default=None, help="stop this invocation after N steps")
    parser.add_argument("--threads", type=bounded_int(0, 1024), default=0,
                        help="CPU threads for TensorFlow (0 = the CPUs this process may use)")
    parser.add_argument("--nice", type=bounded_int(0, 19), default=0, help="lower the trainer's CPU priority")
    cluster = parser.add_argument_group("training across machines (see docs/distributed.md; or set TF_CONFIG)")
    cluster.add_argument("--worker-hosts", default=None, metavar="HOST:PORT,HOST:PORT",
                         help="every worker's address, the same list on each; worker 0 is the chief")
    cluster.add_argument("--task-index", type=bounded_int(0, 10_000), default=None, help="this worker's place in the list")
    cluster.add_argument("--collective-timeout", type=float_between(0, 86_400), default=COLLECTIVE_TIMEOUT_S,
                         metavar="SECONDS", help="fail when a worker waits this long for the others (0 = no limit)")
    add_spec_arguments(parser)


def train_main(args: argparse.Namespace) -> int:
    """Take the runs root's lock, plan the run (no TensorFlow yet), then train; exit codes in EXIT_*.

    In a cluster only the chief takes the lock and writes the run directory; the other workers
    read its plan and checkpoints and keep their own files in a private temporary folder.
    """
    run_dir = Path(args.run_dir)
    if args.resume and args.epochs is not None:
        return _fail("--resume continues to the run's recorded total; drop --epochs (or drop --resume to add epochs)")
    if run_dir.exists() and not run_dir.is_dir():
        return _fail(f"--run-dir is a file, not a folder: {run_dir}")
    try:
        role = _role(args)
    except ClusterError as error:
        return _fail(str(error))
    if not role.chief:
        return _plan_and_train(args, run_dir, role)  # the chief holds the lock for the whole cluster
    lock = TrainingLock(settings.runs_root())
    try:
        if not lock.acquire(run_dir.resolve()):
            holder = lock.holder() or {}
            print(f"error: another training job is running ({Path(holder.get('run_dir') or '?').name}, "
                  f"pid {holder.get('pid')}); one job at a time", file=sys.stderr)
            return EXIT_BUSY
    except OSError as error:
        return _fail(f"cannot take the training lock in {lock.path.parent}: {error.strerror or error}")
    try:
        return _plan_and_train(args, run_dir, role)
    finally:
        lock.release()


def _role(args: argparse.Namespace) -> Role:
    """This process's role: alone, or a task of the cluster in --worker-hosts/--task-index or $TF_CONFIG."""
    hosts, index = getattr(args, "worker_hosts", None), getattr(args, "task_index", None)
    if hosts is not None or index is not None:
        if hosts is None or index is None:
            raise ClusterError("--worker-hosts and --task-index go together")
        if os.environ.get(TF_CONFIG, "").strip():
            raise ClusterError("TF_CONFIG is set as well as --worker-hosts; give the cluster one way, not both")
        # TensorFlow's strategy reads TF_CONFIG itself: the flags are only a shorter way to write it.
        os.environ[TF_CONFIG] = tf_config_from_flags(hosts, index)
    cluster = cluster_from_env()
    timeout = getattr(args, "collective_timeout", COLLECTIVE_TIMEOUT_S)
    return Role(cluster, collective_timeout=timeout if cluster else None)


def _plan_and_train(args: argparse.Namespace, run_dir: Path, role: Role) -> int:
    invocation = Invocation(run_dir=run_dir, add_epochs=args.epochs, resume=args.resume,
                            max_steps=args.max_steps, threads=args.threads, nice=args.nice)
    try:
        plan = make_plan(invocation, given_settings(args))
        _check_inputs(plan.spec)
    except SpecError as error:
        return _fail(str(error))
    if plan.done:
        print(plan.done)
        return 0
    if role.chief:
        try:
            save_plan(plan)
        except OSError as error:
            return _fail(f"cannot write to {run_dir}: {error.strerror or error}")
        for note in plan.notes:
            print(note, flush=True)
    from aigc.engine.trainer import main_guarded

    return main_guarded(plan, role)


def _check_inputs(spec) -> None:
    """The files a spec names exist and are usable: checked before TensorFlow loads."""
    if spec.init_from and not Path(spec.init_from).is_file():
        raise SpecError(f"--init-from: file not found: {spec.init_from}")
    if spec.data:
        try:
            check_file(spec.data)
        except DataError as error:
            raise SpecError(f"--data: {error}") from None


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

    from aigc.engine.checkpoints import CheckpointError, load_generator
    from aigc.engine.sampling import generate, grid

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        return _fail(f"--out must end in .png or .npz, got {out.name!r}")
    if not out.parent.exists():
        return _fail(f"--out: folder does not exist: {out.parent}")
    try:
        generator, config, _card = load_generator(args.checkpoint or settings.shipped_generator())
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
