"""usable_cpus(): the affinity mask and the cgroup v2 / v1 CPU quota, read from fake cgroup files; and the
TensorFlow thread pools the trainer and the bench set from it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigc import cpus


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def many_cores(monkeypatch):
    """Pretend the host has 64 cores, all in the affinity mask (os.cpu_count() would say the same)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)


def test_cgroup_v2_quota_limits_a_container_on_a_big_host(tmp_path, many_cores):
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu memory")
    write(proc, "0::/\n")  # a container's cgroup namespace: its own cgroup is the root
    write(root / "cpu.max", "200000 100000\n")  # docker run --cpus 2
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 2
    write(root / "cpu.max", "150000 100000\n")  # --cpus 1.5 -> 2 threads (rounded up)
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 2
    write(root / "cpu.max", "max 100000\n")  # no limit
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 64


def test_cgroup_v2_limit_on_an_ancestor_applies(tmp_path, many_cores):
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu")
    write(proc, "0::/system.slice/app.service\n")
    write(root / "system.slice" / "app.service" / "cpu.max", "max 100000")
    write(root / "system.slice" / "cpu.max", "300000 100000")
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 3


def test_cgroup_v1_quota(tmp_path, many_cores):
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(proc, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "400000\n")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 4
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1\n")  # unlimited
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 64


def test_affinity_wins_when_smaller(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})  # taskset -c 0-2
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu")
    write(proc, "0::/\n")
    write(root / "cpu.max", "800000 100000")
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 3


@pytest.mark.parametrize("content", ["garbage", "0 0", "", "12 abc"])
def test_unreadable_or_odd_files_never_break_it(tmp_path, many_cores, content):
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu")
    write(proc, "0::/\n")
    write(root / "cpu.max", content)
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 64
    assert cpus.usable_cpus(cgroup_root=tmp_path / "missing", proc_cgroup=tmp_path / "missing") == 64


def test_tiny_quota_is_still_one_cpu(tmp_path, many_cores):
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu")
    write(proc, "0::/\n")
    write(root / "cpu.max", "10000 100000")  # --cpus 0.1
    assert cpus.usable_cpus(cgroup_root=root, proc_cgroup=proc) == 1


def test_trainer_threads_leave_one_for_the_server(monkeypatch):
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2)
    assert cpus.trainer_threads() == 1
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1)
    assert cpus.trainer_threads() == 1


def test_this_machine():
    assert 1 <= cpus.usable_cpus() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("flags, native", [("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True),
                                           ("fpu amx_tile amx_bf16", True), ("", False)])
def test_native_bf16_comes_from_the_cpu_flags(tmp_path, flags, native):
    from aigc.cpus import cpu_model_and_flags, has_native_bf16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t: avx512_bf16\n")
    assert has_native_bf16(cpuinfo) is native  # the first CPU's line decides
    assert cpu_model_and_flags(cpuinfo)[0] == "Some CPU"
    assert has_native_bf16(tmp_path / "missing") is False


def test_the_first_cpus_fields_give_model_flags_and_clock(tmp_path):
    from aigc.cpus import clock_ghz, cpu_model_and_flags

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: A: CPU\ncpu MHz\t\t: 2450.5\nflags\t\t: avx2 fma\n\n"
                       "processor\t: 1\ncpu MHz\t\t: 1200.0\n")
    assert cpu_model_and_flags(cpuinfo) == ("A: CPU", {"avx2", "fma"}) and clock_ghz(cpuinfo) == 2.4505
    assert clock_ghz(tmp_path / "none") is None and cpu_model_and_flags(tmp_path / "none") == (None, set())


def test_tensorflow_gets_as_many_inter_op_threads_as_intra_op(monkeypatch):
    """One inter-op thread ran the GAN step's independent ops one at a time: 1.17-1.48x fewer images per second on
    2 cores (issue 23). Both pools get the threads the process may use, or the ones asked for."""
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 6)
    assert cpus.tensorflow_pools() == (6, 6)
    assert cpus.tensorflow_pools(1) == (1, 1)  # the page's trainer, one core left to the server
    code = ("from aigc.cpus import configure_tensorflow_threads as c; import tensorflow as tf; t = tf.config.threading;"
            "print(c(2), t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.stdout.split() == ["(2,", "2)", "2", "2"], out.stdout


@pytest.mark.parametrize("threads, logged", [("2", "threads 2 intra-op + 2 inter-op"),
                                             ("1", "threads 1 intra-op + 1 inter-op")])
def test_the_trainer_runs_with_both_pools_and_says_so(tmp_path, synthetic_npz, threads, logged):
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "aigc", "train", "--run-dir", str(run_dir), "--data", str(synthetic_npz),
                    "--epochs", "1", "--max-steps", "2", "--batch-size", "64", "--eval-samples", "0",
                    "--threads", threads], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", AIGC_RUNS_DIR=str(tmp_path)), timeout=300, check=True)
    assert logged in (run_dir / "train.log").read_text()
