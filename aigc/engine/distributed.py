"""What a worker of a MultiWorkerMirroredStrategy cluster needs besides the strategy itself.

Every worker runs the same loop, and collectives need all of them, so decisions that one
worker makes alone (a STOP file, a signal, the chief's checkpoint clock) are put to a vote
after each step. A dead or unreachable peer surfaces as a TensorFlow error, turned here into
one line for status.json.
"""
from __future__ import annotations

import faulthandler
import re

from aigc.engine.cluster import Role

OTHER_STOP = "another worker asked to stop"
_TASK = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")
_ADDRESS = re.compile(r"ipv4:([\d.]+:\d+)")


def join_or_exit(make_strategy, role: Role, *, note, log_path):
    """make_strategy(), or exit 1 when the cluster has not formed within the collective timeout.

    TensorFlow waits for every worker to register without a limit, holding the GIL (no Python thread
    or signal handler runs meanwhile), so the watchdog is faulthandler's C thread; the reason is noted
    in status.json first, since nothing can be written once it fires. The traceback goes to log_path.
    """
    if not role.collective_timeout:
        return make_strategy()
    note(f"the cluster did not form within --collective-timeout {role.collective_timeout:g} s "
         f"({role.workers} workers expected); start every worker")
    with open(log_path, "a", encoding="utf-8") as log:
        faulthandler.dump_traceback_later(role.collective_timeout, exit=True, file=log)
        try:
            strategy = make_strategy()
        finally:
            faulthandler.cancel_dump_traceback_later()
    note(None)
    return strategy


def make_agreement(strategy):
    """agree(stop_reason, checkpoint_due) -> the same (reason or None, due) on every worker, via one all-reduce."""
    import tensorflow as tf

    @tf.function
    def tally(votes):
        per_replica = strategy.run(lambda: tf.identity(votes))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def agree(stop_reason: str | None, checkpoint_due: bool) -> tuple[str | None, bool]:
        totals = tally(tf.constant([float(bool(stop_reason)), float(bool(checkpoint_due))]))
        stop, due = (float(v) > 0 for v in totals.numpy())
        return (stop_reason or OTHER_STOP) if stop else None, due

    return agree


def chiefs_value(strategy, value: int, chief: bool) -> int:
    """The chief's value on every worker, via one all-reduce: the chief's replicas share it, the others add 0
    (a strategy reduces by sum or mean only)."""
    import tensorflow as tf

    share = float(value) / len(strategy.extended.worker_devices) if chief else 0.0

    @tf.function
    def total(mine):
        per_replica = strategy.run(lambda: tf.identity(mine))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return int(round(float(total(tf.constant(share)).numpy())))


def cluster_failure(error: BaseException, role: Role) -> str | None:
    """One line for a cluster error (a peer died, hung or became unreachable), else None."""
    import tensorflow as tf

    if role.cluster is None or not isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                                                      tf.errors.AbortedError, tf.errors.CancelledError)):
        return None
    text = str(error)
    advice = "the other workers stopped too; start every worker again with --resume to continue from the last checkpoint"
    if isinstance(error, tf.errors.DeadlineExceededError):
        return (f"a collective waited longer than --collective-timeout {role.collective_timeout:g} s "
                f"(a worker hung or is far slower); {advice}")
    # The lost task is named after "unhealthy" (heartbeats stopped) or "remote target" (connection refused).
    peer = next((_TASK.search(text.split(marker, 1)[1]) for marker in ("unhealthy", "remote target")
                 if marker in text and _TASK.search(text.split(marker, 1)[1])), None)
    who = f"{peer.group(1)} {peer.group(2)}" if peer else None
    address = _ADDRESS.search(text)
    if address:
        who = f"{who} ({address.group(1)})" if who else f"the worker at {address.group(1)}"
    return f"{who or 'a worker'} stopped or became unreachable (its own output says why, if it failed); {advice}"
