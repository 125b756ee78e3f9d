"""Which task of a multi-worker cluster this process is, read from TF_CONFIG (no TensorFlow here).

TensorFlow's MultiWorkerMirroredStrategy reads the same variable; this module only answers the
questions the CLI must settle before TensorFlow loads: is there a cluster, how many workers,
and is this process the chief (the one writer of the run directory, the one that takes the lock).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

TF_CONFIG = "TF_CONFIG"
JOBS = ("chief", "worker")  # MultiWorkerMirroredStrategy's jobs; "ps" and "evaluator" are other strategies'


class ClusterError(ValueError):
    """TF_CONFIG or the cluster flags cannot describe a cluster; str(error) is one line for a person."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster: every task's address, its own job and index."""

    tasks: tuple[str, ...]  # "job:index@host:port", chief first: the order TensorFlow numbers workers in
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        """Processes that train together (the chief counts as a worker)."""
        return len(self.tasks)

    @property
    def is_chief(self) -> bool:
        """The chief task, else worker 0 when the cluster names no chief (TensorFlow's rule)."""
        has_chief = any(task.startswith("chief:") for task in self.tasks)
        return self.task_type == "chief" or (not has_chief and self.task_index == 0)

    @property
    def name(self) -> str:
        """This task as TensorFlow names it, e.g. 'worker 1'."""
        return f"{self.task_type} {self.task_index}"


def tf_config_from_flags(worker_hosts: str, task_index: int) -> str:
    """TF_CONFIG for --worker-hosts host:port,host:port --task-index N (worker 0 is the chief)."""
    hosts = [host.strip() for host in worker_hosts.split(",") if host.strip()]
    if len(hosts) < 2:
        raise ClusterError(f"--worker-hosts needs two or more host:port addresses, got {worker_hosts!r}")
    for host in hosts:
        _check_address(host, "--worker-hosts")
    if len(set(hosts)) != len(hosts):
        raise ClusterError(f"--worker-hosts lists an address twice: {worker_hosts!r}")
    if not 0 <= task_index < len(hosts):
        raise ClusterError(f"--task-index must be between 0 and {len(hosts) - 1} for {len(hosts)} workers, "
                           f"got {task_index}")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task_index}})


def cluster_from_env(environ=None) -> Cluster | None:
    """The cluster described by $TF_CONFIG, or None when it is unset or names a single task."""
    text = (environ if environ is not None else os.environ).get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError:
        raise ClusterError("TF_CONFIG is not valid JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ClusterError('TF_CONFIG needs a "cluster" object, e.g. {"cluster": {"worker": ["h1:2222", "h2:2222"]}, '
                           '"task": {"type": "worker", "index": 0}}')
    cluster, task = config["cluster"], config.get("task") or {}
    others = sorted(set(cluster) - set(JOBS))
    if others:
        raise ClusterError(f"TF_CONFIG names job(s) {', '.join(others)}; this trainer runs chief and worker tasks only")
    tasks = []
    for job in JOBS:
        addresses = cluster.get(job) or []
        if not isinstance(addresses, list) or (job == "chief" and len(addresses) > 1):
            raise ClusterError(f'TF_CONFIG\'s "{job}" must be a list of host:port addresses (at most one chief)')
        for index, address in enumerate(addresses):
            _check_address(address, "TF_CONFIG")
            tasks.append(f"{job}:{index}@{address}")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in JOBS or not isinstance(task_index, int) or not 0 <= task_index < len(cluster.get(task_type) or []):
        raise ClusterError(f'TF_CONFIG\'s "task" must name this process\'s job and index in the cluster, got {task!r}')
    if len(tasks) < 2:
        return None  # one task: an ordinary single-process run
    return Cluster(tuple(tasks), task_type, task_index)


def _check_address(address, where: str) -> None:
    host, _, port = str(address).rpartition(":")
    if not isinstance(address, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"{where}: {address!r} is not a host:port address")


@dataclass(frozen=True)
class Role:
    """How this process trains: alone, or as one task of a cluster (and then where the chief's checkpoints are)."""

    cluster: Cluster | None = None
    collective_timeout: float | None = None  # seconds; None = wait as long as the peers are alive
    restore_from: str | None = None  # a non-chief restores from the chief's ckpt folder, not its private one

    @property
    def chief(self) -> bool:
        """True when this process writes the run directory (a single process always does)."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def workers(self) -> int:
        return self.cluster.workers if self.cluster else 1
