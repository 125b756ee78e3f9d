"""One reader per run per process: every session watching a run shares one watcher and its snapshots.

A watcher reads status.json only when its (mtime, size) changed and only the new bytes of
metrics.jsonl (by offset; a file that shrank or was replaced starts over). Step records, which
grow without bound (one per ~20 steps), are kept downsampled: when more than 2 x max_points are
held, every other one is dropped and later ones are kept at the doubled stride, so a curve has
between max_points and 2 x max_points points spread over the whole run. Epoch and probe records
are kept whole. Sessions get the same immutable Snapshot; its `version` changes only when
something a page shows changed, so a session can skip re-rendering an unchanged run.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from aigc.runs.files import read_metrics
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import PROBE, read_status

MAX_STEP_POINTS = 2000  # per curve: a 100-epoch run has ~9,400 step records, a chart needs ~1-2k points
REFRESH_S = 0.5  # a watcher re-reads its files at most this often, however many sessions ask
MAX_WATCHERS = 16  # runs watched at once by this process (the runs list and Compare each ask for several)
READ_CHUNK = 4 * 2**20  # bytes of metrics.jsonl held at once while catching up
_STEP = re.compile(rb'"kind":\s*"step"')
records_kept = 0  # records parsed and kept by every watcher of this process, ever: the app's heap freezer watches it


def _frozen(record: dict) -> Mapping:
    return MappingProxyType(record)


@dataclass(frozen=True)
class Snapshot:
    """What a page shows of a run at one moment: immutable, shared by every session."""

    version: tuple
    status: Mapping | None
    records: tuple[Mapping, ...]  # downsampled step records, then every epoch and probe record, each in file order
    step_stride: int = 1  # 1 in step_stride step records is kept
    sample_epochs: tuple[int, ...] = ()

    def of_kind(self, kind: str) -> list[Mapping]:
        """The records of one kind ('step', 'epoch', 'probe'), in file order."""
        return [r for r in self.records if r.get("kind") == kind]


@dataclass
class _Metrics:
    """Incremental, bounded reader of one metrics.jsonl."""

    max_points: int
    offset: int = 0
    identity: tuple | None = None  # (device, inode) of the file being read
    steps: list = field(default_factory=list)
    others: list = field(default_factory=list)
    stride: int = 1
    seen_steps: int = 0
    generation: int = 0  # bumps when the file was replaced or truncated and reading started over

    def reset(self, identity) -> None:
        self.offset, self.identity, self.steps, self.others = 0, identity, [], []
        self.stride, self.seen_steps, self.generation = 1, 0, self.generation + 1

    def update(self, path: Path) -> bool:
        """Read what was appended since the last call; True when any record was added or the file started over."""
        try:
            stat = path.stat()
        except OSError:
            if self.identity is None and not self.offset:
                return False
            self.reset(None)
            return True
        identity, restarted = (stat.st_dev, stat.st_ino), False
        if identity != self.identity or stat.st_size < self.offset:
            self.reset(identity)
            restarted = True
        added = 0
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offset)
                while self.offset < stat.st_size:  # chunk by chunk: transient memory stays bounded
                    data = handle.read(min(READ_CHUNK, stat.st_size - self.offset))
                    complete = data[:data.rfind(b"\n") + 1]  # a partial last line: the writer is mid-append
                    if not complete:
                        break
                    self.offset += len(complete)
                    handle.seek(self.offset)
                    added += sum(self._add(line) for line in complete.splitlines())
        except OSError:
            pass
        global records_kept
        records_kept += added
        return restarted or added > 0

    def _add(self, line: bytes) -> bool:
        if _STEP.search(line):  # a step record the stride skips is never parsed: a long run costs its kept points
            self.seen_steps += 1
            if (self.seen_steps - 1) % self.stride:
                return False
        try:
            record = json.loads(line)
        except ValueError:
            return False
        if not isinstance(record, dict):
            return False
        if record.get("kind") != "step":
            self.others.append(_frozen(record))
            return True
        self.steps.append(_frozen(record))
        if len(self.steps) > 2 * self.max_points:
            self.steps = self.steps[::2]
            self.stride *= 2
        return True


class RunWatcher:
    """Shared view of one run directory; snapshot() is cheap and thread-safe."""

    def __init__(self, run_dir: Path, *, max_points: int = MAX_STEP_POINTS, refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic):
        self.paths = RunPaths(Path(run_dir))
        self.refresh_s, self._clock = refresh_s, clock
        self._lock = threading.Lock()
        self._metrics = _Metrics(max_points)
        self._checked_at: float | None = None
        self._snapshot = Snapshot(version=(), status=None, records=())
        self.reads = 0  # refreshes that found new records in metrics.jsonl (what sharing one reader saves is counted by it)

    def snapshot(self, *, holder=PROBE) -> Snapshot:
        """The newest snapshot, refreshed from disk at most every refresh_s seconds (holder: as read_status takes)."""
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self.refresh_s:
                self._checked_at = now
                self._refresh(holder)
            return self._snapshot

    def invalidate(self) -> None:
        """Re-read at the next snapshot, whatever the interval: after this process changed the run (Stop, Resume)."""
        with self._lock:
            self._checked_at = None

    def _refresh(self, holder) -> None:
        metrics_changed = self._metrics.update(self.paths.metrics)
        self.reads += metrics_changed
        # status.json is a few hundred bytes; liveness comes from the lock, which changes without the file changing.
        status = read_status(self.paths, holder=holder)
        frozen_status = None if status is None else MappingProxyType(dict(status))
        samples = tuple(int(f.stem.split("_")[-1]) for f in self.paths.sample_files())
        version = (self._metrics.generation, self._metrics.offset, _status_version(frozen_status), samples,
                   _mtime(self.paths.live_sample))
        if version == self._snapshot.version:
            return
        records = tuple(self._metrics.steps) + tuple(self._metrics.others) if metrics_changed or \
            not self._snapshot.version else self._snapshot.records
        self._snapshot = Snapshot(version, frozen_status, records, self._metrics.stride, samples)


def _status_version(status: Mapping | None) -> str:
    return "" if status is None else json.dumps(dict(status), sort_keys=True, default=str)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


class Watchers:
    """The process's watchers, one per run directory, the least recently used dropped beyond max_watchers."""

    def __init__(self, *, max_watchers: int = MAX_WATCHERS, **options):
        self.max_watchers, self._options = max_watchers, options
        self._lock = threading.Lock()
        self._watchers: OrderedDict[str, RunWatcher] = OrderedDict()

    def of(self, run_dir: Path) -> RunWatcher:
        """The shared watcher of run_dir (created on first use)."""
        key = str(Path(run_dir).resolve())
        with self._lock:
            watcher = self._watchers.get(key)
            if watcher is None:
                watcher = self._watchers[key] = RunWatcher(Path(key), **self._options)
                while len(self._watchers) > self.max_watchers:
                    self._watchers.popitem(last=False)
            self._watchers.move_to_end(key)
            return watcher

    def __len__(self) -> int:
        return len(self._watchers)

    def clear(self) -> None:
        """Forget every watcher (tests and operators only)."""
        with self._lock:
            self._watchers.clear()


WATCHERS = Watchers()  # the process's watchers: every session and page shares them


def records_of(metrics: Path) -> tuple:
    """A metrics file's records: a run's metrics.jsonl through its shared watcher (bounded, read once per change),
    any other file (the shipped model's short training log) read whole."""
    metrics = Path(metrics)
    if metrics.name == "metrics.jsonl":
        return WATCHERS.of(metrics.parent).snapshot().records
    return tuple(read_metrics(metrics))
