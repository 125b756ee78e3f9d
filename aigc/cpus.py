"""How many CPUs this process may really use: its affinity mask and its cgroup's CPU quota.

os.cpu_count() counts the host's cores; a container limited with `--cpus 2` on a 64-core host
would start 63 trainer threads that the kernel then throttles. The quota lives in cgroup v2's
cpu.max ("QUOTA PERIOD" or "max PERIOD") or cgroup v1's cpu.cfs_quota_us / cpu.cfs_period_us,
in the process's own cgroup or any ancestor (the smallest wins).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # oneDNN computes bfloat16 natively with either


def first_cpu(cpuinfo: Path = CPUINFO) -> dict[str, str]:
    """{field: value} of the first CPU in /proc/cpuinfo ('model name', 'flags', 'cpu MHz', ...); {} where there is none."""
    fields = {}
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # a blank line ends the first CPU's block
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_model_and_flags(cpuinfo: Path = CPUINFO) -> tuple[str | None, set[str]]:
    """(model name, feature flags) of the first CPU in /proc/cpuinfo; (None, set()) where there is none."""
    fields = first_cpu(cpuinfo)
    return fields.get("model name"), set(fields.get("flags", "").split())


def clock_ghz(cpuinfo: Path = CPUINFO) -> float | None:
    """The first CPU's current clock in GHz ('cpu MHz'), None where it is not reported."""
    try:
        return float(first_cpu(cpuinfo)["cpu MHz"]) / 1000
    except (KeyError, ValueError):
        return None


def has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), where mixed_bfloat16 pays."""
    return any(flag in cpu_model_and_flags(cpuinfo)[1] for flag in NATIVE_BF16_FLAGS)


def usable_cpus(*, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may use: min(affinity, cgroup quota rounded up), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root=cgroup_root, proc_cgroup=proc_cgroup)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def trainer_threads(*, reserve: int = 1) -> int:
    """Threads for a background trainer: usable CPUs less `reserve` left to the web server, at least 1."""
    return max(1, usable_cpus() - reserve)


def tensorflow_pools(threads: int = 0) -> tuple[int, int]:
    """(intra-op, inter-op) thread counts for a TensorFlow process that may use `threads` CPUs (0 = usable_cpus()).

    Both pools get that many. A GAN step at batch 32 is many small ops on independent branches (G's forward, D on
    real and on fake images, the R1 penalty, two optimizers, the EMA); with one inter-op thread they run one at a
    time and each is too small to split well across cores. On the 2-core AVX2 EPYC, 2 inter-op threads trained
    1.17-1.48x the images per second of 1 (3 interleaved rounds, docs/performance.md, issue 23)."""
    count = threads or usable_cpus()
    return count, count


def configure_tensorflow_threads(threads: int = 0) -> tuple[int, int] | None:
    """Set TensorFlow's pools to tensorflow_pools(threads), before TensorFlow runs anything in this process; the
    pools set, or None when it already ran (a notebook, the tests) and its pools stay as they are."""
    import tensorflow as tf

    intra, inter = tensorflow_pools(threads)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        return None
    return intra, inter


def cgroup_cpu_limit(*, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota in CPUs (2.5 = 250 ms per 100 ms) of this process's cgroups, None when unlimited."""
    limits = []
    for kind, relative in _own_cgroups(proc_cgroup):
        base = cgroup_root if kind == "v2" else cgroup_root / kind
        if kind == "v2" and not (cgroup_root / "cgroup.controllers").exists():
            base = cgroup_root / "unified"  # hybrid hierarchy: v2 mounted beside the v1 controllers
        for folder in _self_and_ancestors(base, relative):
            limit = _v2_limit(folder) if kind == "v2" else _v1_limit(folder)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _own_cgroups(proc_cgroup: Path) -> list[tuple[str, str]]:
    """[('v2' | 'cpu' | 'cpu,cpuacct', '/relative/path')] from /proc/self/cgroup (empty when unreadable)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return [("v2", "/")]
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _id, controllers, relative = parts
        if controllers == "":
            found.append(("v2", relative))
        elif "cpu" in controllers.split(","):
            found.append((controllers, relative))
    return found


def _self_and_ancestors(base: Path, relative: str) -> list[Path]:
    """base/relative, then each parent folder up to base (a limit set higher up applies too)."""
    parts = [p for p in relative.strip("/").split("/") if p and p != ".."]
    return [base.joinpath(*parts[:index]) for index in range(len(parts), -1, -1)]


def _v2_limit(folder: Path) -> float | None:
    try:
        quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        if quota == "max":
            return None
        return int(quota) / int(period or "100000")
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_limit(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text().strip())
        period = int((folder / "cpu.cfs_period_us").read_text().strip())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
