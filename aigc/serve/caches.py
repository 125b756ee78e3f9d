"""Every cache the server keeps, listed in one place: bounded, thread-safe, owned by the process, emptied by no visitor.

Streamlit's clear-cache message (anyone can send it over the websocket) empties every
st.cache_resource and st.cache_data for all sessions: reruns went from 90 ms to 280-750 ms
while the generator and evaluator reloaded. These caches are plain module objects, keyed by
the caller (by path and modification time for files). Concurrent callers of a missing key
wait for the one computing it, so a viral link is computed once, not once per visitor.

The ProcessCaches below (ALL) hold what pages compute. serve/watcher.py `WATCHERS` keeps one run
watcher per run directory (16 at most, each with a bounded series). Five more caches live beside
the code they serve, because their keys are objects that must not be kept alive or files read
below this layer:

- engine/sampling.py `_SERVING`: weak-key dict, generator model -> its traced serving tf.function
  (dies with the model).
- explore/invert.py `_FUNCTIONS`: weak-key dict, generator model -> {(evaluator model, starts, steps):
  traced inversion} and its bank of start digits (~6 MB per generator: 512 per label, as bytes; dies with
  the model).
- quality/metrics.py `_load_cached`: lru_cache(4), (evaluator path, stats path, mtimes) -> Evaluator.
- explore/calibration.py `_load_cached`: lru_cache(4), (calibration path, mtime) -> Calibration;
  `_uncalibrated`: lru_cache(16), problem text -> the identity Calibration (logged once per problem).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from collections import OrderedDict
from typing import Callable, Hashable


class ProcessCache:
    """An LRU cache bounded by entries and (optionally) by the bytes `size_of` reports."""

    def __init__(self, *, max_entries: int, max_bytes: int | None = None,
                 size_of: Callable[[object], int] | None = None):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._size_of = size_of or (lambda _value: 0)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._bytes = 0

    def get_or_make(self, key: Hashable, make: Callable[[], object]):
        """The cached value of key, else make() once (other callers of the same key wait for it)."""
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key][0]
                waiting = self._pending.get(key)
                if waiting is None:
                    self._pending[key] = threading.Event()
                    break
            waiting.wait()  # another thread computes it; then look again (it may have failed)
        try:
            value = make()
            self._store(key, value)
            return value
        finally:
            with self._lock:
                self._pending.pop(key).set()

    def _store(self, key: Hashable, value) -> None:
        size = int(self._size_of(value))
        with self._lock:
            if self.max_bytes is not None and size > self.max_bytes:
                return  # larger than the whole budget: serve it, keep nothing
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes):
                _old_key, (_old, old_size) = self._entries.popitem(last=False)
                self._bytes -= old_size

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def items(self) -> list[tuple[Hashable, object]]:
        """(key, value) of every entry, oldest first (a copy: the warm store saves some)."""
        with self._lock:
            return [(key, value) for key, (value, _size) in self._entries.items()]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes held, as `size_of` counts them."""
        return self._bytes

    def clear(self) -> None:
        """Empty the cache (tests and operators only: no page calls this)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class Throttled:
    """The newest value per key, remade when its version changed, but never using more than `share` of one core.

    For what many sessions poll and that is costly to remake on every change: the Train page's
    figures of a run whose records change every ~3 s. A remake that took t seconds is followed by
    at least t / share seconds of the value it made, so remakes cost a poll at most share x its
    interval on average (with share 0.002: 3 ms of a 1.5 s poll). A small run's figures (~5 ms to
    make) follow every change; a 10,000-epoch run's (~35 ms) at most every ~18 s. Callers of a key
    being remade get the previous value at once; the first call for a key waits for it.
    """

    def __init__(self, *, share: float, max_entries: int, clock: Callable[[], float] = time.monotonic):
        self.share, self.max_entries, self._clock = share, max_entries, clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, list] = OrderedDict()  # key -> [version, value, made_at, cost_s]
        self._making: set = set()

    def get(self, key: Hashable, version: Hashable, make: Callable[[], object]):
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                fresh = entry[0] == version or self._clock() - entry[2] < entry[3] / self.share
                if fresh or key in self._making:
                    return entry[1]
            self._making.add(key)
        try:
            started = time.perf_counter()
            value = make()
            cost = time.perf_counter() - started
            with self._lock:
                self._entries[key] = [version, value, self._clock(), cost]
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._making.discard(key)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


MB = 2**20
# The pages' caches (the others are listed in the module docstring).
GENERATORS = ProcessCache(max_entries=6)  # (path, mtime) -> (model, config, card): the served generators
DIRECTIONS = ProcessCache(max_entries=6)  # (path, mtime) -> style directions of a generator
DISCRIMINATORS = ProcessCache(max_entries=4)  # a model's config -> its discriminator (layers table on /model)
GRIDS = ProcessCache(max_entries=1024, max_bytes=16 * MB, size_of=lambda v: v[0].nbytes + len(v[1]))  # Generate grids
PREVIEWS = ProcessCache(max_entries=2048, max_bytes=8 * MB, size_of=lambda strips: sum(map(len, strips)))  # slider strips
INTERPOLATIONS = ProcessCache(max_entries=64, max_bytes=8 * MB, size_of=lambda v: len(v[0]) + len(v[1]))  # strip + GIF
WRITTEN = ProcessCache(max_entries=64, max_bytes=32 * MB, size_of=lambda v: v[0].nbytes + v[1].nbytes)  # Write pages
INVERSIONS = ProcessCache(max_entries=256)  # drawings inverted into the generator, ~3 KB each
# run -> the Train page's figures of its newest snapshot, remade on a change with at most 0.2% of a core per run
CHARTS = Throttled(share=0.002, max_entries=32)
SAMPLE_GRIDS = ProcessCache(max_entries=256, max_bytes=16 * MB, size_of=len)  # (file, mtime) -> a run's grid, 2x PNG
# (inside file, mtimes) -> the Train page's look inside one epoch: D-framed grid PNG (~60 KB) and map figure
INSIDE = ProcessCache(max_entries=64)
# (generator file, mtime, sample count) -> its quality on that count: Compare's re-evaluation on a common count
EVALUATIONS = ProcessCache(max_entries=64)
TRAINING_SETS = ProcessCache(max_entries=1)  # one MNIST file (~50 MB) for the nearest-neighbour check
ALL = {"generators": GENERATORS, "directions": DIRECTIONS, "discriminators": DISCRIMINATORS, "grids": GRIDS,
       "previews": PREVIEWS, "interpolations": INTERPOLATIONS, "written": WRITTEN, "inversions": INVERSIONS,
       "training_sets": TRAINING_SETS, "charts": CHARTS, "sample_grids": SAMPLE_GRIDS,
       "inside": INSIDE, "evaluations": EVALUATIONS}


def file_key(path) -> tuple[str, int]:
    """(path, modification time in ns): a retrained file is a new key, an unchanged one is reused."""
    return str(path), Path(path).stat().st_mtime_ns


def clear_all() -> None:
    """Empty every cache (tests and operators only: no page calls this)."""
    for cache in ALL.values():
        cache.clear()
