"""The shared run watcher: only new bytes, bounded downsampled series, immutable snapshots, liveness from the lock."""
from __future__ import annotations

import json
import os

import pytest

from aigc.runs.files import append_metrics, atomic_write_json
from aigc.serve.watcher import RunWatcher, Watchers


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def step(n: int) -> dict:
    return {"kind": "step", "step": n, "epoch": n / 100, "d_loss": 1.0, "g_loss": 1.0}


def epoch(n: int) -> dict:
    return {"kind": "epoch", "epoch": n, "step": n * 100, "fdd": 10.0 / n}


def write_lines(path, records, *, mode="a"):
    with open(path, mode) as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run-1"
    folder.mkdir()
    atomic_write_json(folder / "status.json", {"state": "finished", "epoch": 1, "total_epochs": 1})
    return folder


def test_only_new_bytes_are_read_and_a_partial_line_waits(run):
    clock = Clock()
    watcher = RunWatcher(run, refresh_s=0, clock=clock)
    write_lines(run / "metrics.jsonl", [step(1), step(2)])
    first = watcher.snapshot()
    assert [r["step"] for r in first.of_kind("step")] == [1, 2]
    offset = watcher._metrics.offset
    assert offset == (run / "metrics.jsonl").stat().st_size
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(step(3)) + "\n" + '{"kind": "step", "st')  # the writer is mid-append
    second = watcher.snapshot()
    assert [r["step"] for r in second.of_kind("step")] == [1, 2, 3]
    assert watcher._metrics.offset > offset, "reading went on from the offset"
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('ep": 4}\n')
    assert [r["step"] for r in watcher.snapshot().of_kind("step")] == [1, 2, 3, 4]


def test_a_truncated_or_replaced_file_starts_over(run):
    watcher = RunWatcher(run, refresh_s=0)
    write_lines(run / "metrics.jsonl", [step(n) for n in range(1, 6)])
    assert len(watcher.snapshot().of_kind("step")) == 5
    write_lines(run / "metrics.jsonl", [step(9)], mode="w")  # truncated: shorter than the offset
    assert [r["step"] for r in watcher.snapshot().of_kind("step")] == [9]
    replacement = run / "new.jsonl"
    write_lines(replacement, [step(n) for n in range(20, 40)])
    os.replace(replacement, run / "metrics.jsonl")  # replaced: another inode, longer than before
    assert [r["step"] for r in watcher.snapshot().of_kind("step")] == list(range(20, 40))
    (run / "metrics.jsonl").unlink()
    assert watcher.snapshot().of_kind("step") == []


def test_step_series_stay_bounded_and_span_the_run_while_epochs_stay_whole(run):
    watcher = RunWatcher(run, max_points=100, refresh_s=0)
    records = []
    for n in range(1, 50_001):
        records.append(step(n))
        if n % 100 == 0:
            records.append(epoch(n // 100))
    write_lines(run / "metrics.jsonl", records[:30_000])
    watcher.snapshot()  # caught up in two reads, like a page open while the run grows
    write_lines(run / "metrics.jsonl", records[30_000:])
    snapshot = watcher.snapshot()
    steps = [r["step"] for r in snapshot.of_kind("step")]
    assert 100 <= len(steps) <= 200, len(steps)
    assert steps[0] == 1 and steps[-1] > 49_000, "the kept points span the whole run"
    gaps = {b - a for a, b in zip(steps, steps[1:])}
    assert gaps == {snapshot.step_stride}, "evenly spaced"
    assert [r["epoch"] for r in snapshot.of_kind("epoch")] == list(range(1, 501))


def test_sessions_share_one_immutable_snapshot_until_something_changes(run):
    clock = Clock()
    watcher = RunWatcher(run, refresh_s=0.5, clock=clock)
    write_lines(run / "metrics.jsonl", [step(1)])
    first = watcher.snapshot()
    assert watcher.snapshot() is first  # within the refresh window nothing is read again
    clock.now += 1
    assert watcher.snapshot() is first, "nothing changed on disk: the same snapshot, the same version"
    with pytest.raises(TypeError):
        first.records[0]["step"] = 5  # shared between sessions: read-only
    write_lines(run / "metrics.jsonl", [step(2)])
    assert watcher.snapshot() is first, "not re-read before the refresh interval"
    clock.now += 1
    second = watcher.snapshot()
    assert second is not first and second.version != first.version
    assert watcher.reads == 2


def test_invalidate_rereads_at_once(run):
    clock = Clock()
    watcher = RunWatcher(run, refresh_s=60, clock=clock)
    assert watcher.snapshot().status["state"] == "finished"
    atomic_write_json(run / "status.json", {"state": "stopped", "epoch": 1, "total_epochs": 2})
    assert watcher.snapshot().status["state"] == "finished", "within the interval"
    watcher.invalidate()
    assert watcher.snapshot().status["state"] == "stopped"


def test_status_believes_the_lock_not_the_file(run):
    atomic_write_json(run / "status.json", {"state": "running", "pid": os.getpid(), "epoch": 0})
    snapshot = RunWatcher(run, refresh_s=0).snapshot(holder=None)  # nobody holds the lock
    assert snapshot.status["state"] == "failed" and snapshot.status.get("interrupted")


def test_the_registry_shares_one_watcher_per_run_and_stays_bounded(tmp_path):
    watchers = Watchers(max_watchers=3)
    folders = [tmp_path / f"run-{i}" for i in range(5)]
    assert watchers.of(folders[0]) is watchers.of(tmp_path / "run-0" / ".." / "run-0")
    for folder in folders:
        watchers.of(folder)
    assert len(watchers) == 3


def test_a_long_run_is_caught_up_without_parsing_the_skipped_steps(run, monkeypatch):
    """500,000 step records (~40 MB): steps the stride skips are never parsed, so the first snapshot stays fast."""
    from aigc.serve import watcher as watcher_module

    parsed = []
    real_loads = json.loads
    monkeypatch.setattr(watcher_module.json, "loads", lambda text: parsed.append(1) or real_loads(text))
    path = run / "metrics.jsonl"
    line = (json.dumps(step(0), sort_keys=True) + "\n").encode()
    with open(path, "wb") as handle:
        handle.write(line * 500_000)
    append_metrics(path, epoch(1))
    snapshot = RunWatcher(run, refresh_s=0).snapshot()
    assert 2000 <= len(snapshot.of_kind("step")) <= 4000 and len(snapshot.of_kind("epoch")) == 1
    assert len(parsed) < 25_000, f"{len(parsed)} of 500,001 lines parsed"


def test_compare_and_model_cards_read_runs_through_the_shared_watcher(run):
    """Before: /compare read every selected run's metrics.jsonl whole on every rerun (11 s, 1.86 GB for 100 MB)."""
    from aigc.serve import compare
    from aigc.serve.watcher import WATCHERS

    records = [step(n) for n in range(1, 30_001)]
    records += [dict(epoch(e), epoch_time_s=60.0, class_accuracy=0.9) for e in range(1, 3001)]
    write_lines(run / "metrics.jsonl", records)
    entry = compare.Entry("run-1", run / "metrics.jsonl", (), {}, {})
    WATCHERS.clear()
    figure = compare.compare_figure([entry], "fdd")
    assert len(figure.data[0].x) <= 2001, "a long run is thinned for the chart"
    row = compare.summary_rows([entry])[0]
    assert row["epochs"] == 3000 and row["training time (min)"] == 3000.0, "totals count every epoch"
    watcher = WATCHERS.of(run)
    reads = watcher.reads
    compare.summary_rows([entry])
    assert watcher.reads == reads, "a second reader of the same run reads nothing new"
