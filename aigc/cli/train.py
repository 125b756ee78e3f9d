"""`python -m aigc train`: take the runs root's lock, plan the run (no TensorFlow yet), then train."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aigc import settings
from aigc.cli.args import bounded_int, fail, float_between, help_with
from aigc.engine.cluster import TF_CONFIG, ClusterError, Role, cluster_from_env, tf_config_from_flags
from aigc.engine.data import DataError, check_file
from aigc.engine.run_plan import Invocation, make_plan, save_plan
from aigc.engine.spec import MAX_EPOCHS, SpecError, add_spec_arguments, given_settings
from aigc.runs.lock import EXIT_BUSY, TrainingLock

COLLECTIVE_TIMEOUT_S = 300.0  # longer than any chief-only pause (samples, evaluation) the others wait through
MAX_STEPS, MAX_TASK_INDEX = 10**9, 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """train's flags: where and how long (this invocation), then one flag per run-spec setting."""
    parser.add_argument("--run-dir", default="runs/default", help=help_with("run directory (created, or continued)",
                                                                            "runs/default"))
    parser.add_argument("--epochs", type=bounded_int(1, MAX_EPOCHS), default=None,
                        help=help_with("epochs to train: a new run's total, or epochs to add to an existing run's "
                                       "recorded total", 1, 1, MAX_EPOCHS))
    parser.add_argument("--resume", action="store_true", help="continue to the run's recorded total epochs")
    parser.add_argument("--max-steps", type=bounded_int(1, MAX_STEPS), default=None,
                        help=help_with("stop this invocation after N steps", "none (no limit)", 1, MAX_STEPS))
    parser.add_argument("--threads", type=bounded_int(0, 1024), default=0,
                        help=help_with("CPU threads for TensorFlow, intra-op and inter-op each "
                                       "(0 = the CPUs this process may use)", 0, 0, 1024))
    parser.add_argument("--nice", type=bounded_int(0, 19), default=0,
                        help=help_with("lower the trainer's CPU priority", 0, 0, 19))
    cluster = parser.add_argument_group("training across machines (see docs/distributed.md; or set TF_CONFIG)")
    cluster.add_argument("--worker-hosts", default=None, metavar="HOST:PORT,HOST:PORT",
                         help=help_with("every worker's address, the same list on each; worker 0 is the chief",
                                        "none (train alone)"))
    cluster.add_argument("--task-index", type=bounded_int(0, MAX_TASK_INDEX), default=None,
                         help=help_with("this worker's place in the list", "none", 0, MAX_TASK_INDEX))
    cluster.add_argument("--collective-timeout", type=float_between(0, 86_400), default=COLLECTIVE_TIMEOUT_S,
                         metavar="SECONDS", help=help_with("fail when a worker waits this long for the others "
                                                           "(0 = no limit)", f"{COLLECTIVE_TIMEOUT_S:g}", 0, 86_400,
                                                           whole=False))
    add_spec_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Take the runs root's lock, plan the run (no TensorFlow yet), then train; exit codes in cli.args.

    In a cluster only the chief takes the lock and writes the run directory; the other workers
    read its plan and checkpoints and keep their own files in a private temporary folder.
    """
    run_dir = Path(args.run_dir)
    if args.resume and args.epochs is not None:
        return fail("--resume continues to the run's recorded total; drop --epochs (or drop --resume to add epochs)")
    if run_dir.exists() and not run_dir.is_dir():
        return fail(f"--run-dir is a file, not a folder: {run_dir}")
    try:
        role = _role(args)
    except ClusterError as error:
        return fail(str(error))
    if not role.chief:
        return _plan_and_train(args, run_dir, role)  # the chief holds the lock for the whole cluster
    # The runs root's lock: one job at a time there. The run folder's own lock (taken in _plan_and_train, once the
    # plan is valid): one trainer per run, even for trainers started with different runs roots on the same folder.
    locks = [TrainingLock(settings.runs_root())]
    if run_dir.resolve() != settings.runs_root():
        locks.append(TrainingLock(run_dir))
    try:
        if not locks[0].acquire(run_dir.resolve()):
            return _busy(locks[0], "another training job is running")
    except OSError as error:
        return _lock_failure(locks[0], error)
    try:
        return _plan_and_train(args, run_dir, role, run_lock=locks[1] if len(locks) > 1 else None)
    finally:
        for lock in reversed(locks):
            lock.release()


def _busy(lock: TrainingLock, what: str) -> int:
    holder = lock.holder() or {}
    print(f"error: {what} ({Path(holder.get('run_dir') or '?').name}, pid {holder.get('pid')}); one job at a time",
          file=sys.stderr)
    return EXIT_BUSY


def _lock_failure(lock: TrainingLock, error: OSError) -> int:
    return fail(f"cannot take the training lock in {lock.path.parent}: {error.strerror or error}")


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


def _plan_and_train(args: argparse.Namespace, run_dir: Path, role: Role, *, run_lock: TrainingLock | None = None) -> int:
    invocation = Invocation(run_dir=run_dir, add_epochs=args.epochs, resume=args.resume,
                            max_steps=args.max_steps, threads=args.threads, nice=args.nice)
    try:
        plan = make_plan(invocation, given_settings(args))
        _check_inputs(plan.spec)
    except SpecError as error:
        return fail(str(error))
    if plan.done:
        print(plan.done)
        return 0
    try:
        if run_lock is not None and not run_lock.acquire(run_dir.resolve()):
            return _busy(run_lock, "another trainer holds this run folder")
    except OSError as error:
        return _lock_failure(run_lock, error)
    if role.chief:
        try:
            save_plan(plan)
        except OSError as error:
            return fail(f"cannot write to {run_dir}: {error.strerror or error}")
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
