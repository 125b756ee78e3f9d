"""The warm store: what the default pages compute with a shipped generator, saved beside it, so a cold server
shows the first digits without loading TensorFlow (~10 s on 2 cores) for them.

`generator_warm.npz` beside `generator.keras` holds the process caches' entries (caches.GRIDS, PREVIEWS,
INTERPOLATIONS, WRITTEN, DIRECTIONS) that the default Generate and Write a number pages made for that file, tied to its
sha256: once the file changes, the store is ignored. `prime(path)` puts them into the caches, under the
file's live key, once per file version; the pages then find them as if this process had made them.

Plain .npz (no pickle): a JSON manifest describes each key and value, whose arrays and bytes are members.
Rebuild after retraining: `python -m aigc.app.warm_store --write` (it runs the pages with Streamlit's AppTest).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import zipfile
from pathlib import Path

import numpy as np

from aigc.explore.directions import Directions, file_digest
from aigc.explore.reading import Reading
from aigc.runs.files import atomic_write_npz
from aigc.serve import caches

LOG = logging.getLogger("aigc.serve.warm")
SUFFIX = "_warm.npz"
VERSION = 1
STORED = {"grids": caches.GRIDS, "previews": caches.PREVIEWS, "interpolations": caches.INTERPOLATIONS,
          "written": caches.WRITTEN, "directions": caches.DIRECTIONS}
DATACLASSES = {cls.__name__: cls for cls in (Reading, Directions)}
_PRIMED: dict[tuple, bool] = {}  # file_key -> whether the store matched that version of the file
_LOCK = threading.Lock()


def store_path(generator: str | Path) -> Path:
    generator = Path(generator)
    return generator.with_name(generator.stem + SUFFIX)


def prime(generator: str | Path) -> bool:
    """Put the store's entries for this generator file into the caches (once per file version); True when the store
    matches the file byte for byte (it was made from exactly these weights), else False (nothing is added)."""
    try:
        key = caches.file_key(generator)
    except OSError:
        return False
    with _LOCK:
        if key not in _PRIMED:
            _PRIMED[key] = _load(Path(generator), key)
        return _PRIMED[key]


def forget() -> None:
    """Prime again at the next call (a rebuilt store; tests)."""
    with _LOCK:
        _PRIMED.clear()


def _load(generator: Path, key: tuple) -> bool:
    path = store_path(generator)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as npz:
            manifest = json.loads(str(npz["manifest"]))
            if manifest.get("version") != VERSION or manifest.get("generator_sha256") != file_digest(generator):
                return False
            members = {name: npz[name] for name in npz.files if name != "manifest"}
        entries = [(name, tuple(decode(suffix, members)), decode(value, members))
                   for name, suffix, value in manifest["entries"] if name in STORED]
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:  # a damaged store: a slower start
        LOG.warning("warm store %s unusable: %s", path.name, error)
        return False
    for name, suffix, value in entries:
        STORED[name].get_or_make(key + suffix, lambda value=value: value)
    LOG.info("warm store: %d results of %s ready without loading it", len(entries), generator.name)
    return True


def encode(value, members: dict) -> object:
    """A JSON-able description of value; its arrays and bytes become members (named a0, a1, ...)."""
    def member(array: np.ndarray) -> str:
        name = f"a{len(members)}"
        members[name] = array
        return name

    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    if isinstance(value, np.generic):
        return {"v": value.item()}
    if isinstance(value, bytes):
        return {"b": member(np.frombuffer(value, np.uint8))}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays are not stored")
        return {"a": member(value)}
    if isinstance(value, (tuple, list)):
        return {"t" if isinstance(value, tuple) else "l": [encode(item, members) for item in value]}
    if dataclasses.is_dataclass(value) and type(value).__name__ in DATACLASSES:
        return {"d": type(value).__name__,
                "f": {field.name: encode(getattr(value, field.name), members) for field in dataclasses.fields(value)}}
    raise TypeError(f"{type(value).__name__} is not stored")


def decode(description, members: dict):
    """The value `encode` described; arrays come back read-only (cached values are shared by every session)."""
    if not isinstance(description, dict):
        raise ValueError(f"unknown entry {str(description)[:60]}")
    if "d" in description:
        cls = DATACLASSES[description["d"]]
        return cls(**{name: decode(field, members) for name, field in description["f"].items()})
    (kind, body), = description.items()
    if kind == "v":
        return body
    if kind == "b":
        return members[body].tobytes()
    if kind == "a":
        array = np.array(members[body])
        array.setflags(write=False)
        return array
    if kind in ("t", "l"):
        items = [decode(item, members) for item in body]
        return tuple(items) if kind == "t" else items
    raise ValueError(f"unknown entry {str(description)[:60]}")


def entries_of(generator: str | Path) -> list[tuple[str, tuple, object]]:
    """(cache name, key after the file's key, value) for every stored cache's entry of this generator file."""
    key = caches.file_key(generator)
    found = []
    for name, cache in STORED.items():
        found += [(name, k[len(key):], v) for k, v in cache.items() if isinstance(k, tuple) and k[:len(key)] == key]
    return found


def write(generator: str | Path) -> Path:
    """Save the caches' entries of this generator file (made by the pages in this process) as its warm store."""
    members: dict[str, np.ndarray] = {}
    entries = [[name, encode(suffix, members), encode(value, members)] for name, suffix, value in entries_of(generator)]
    manifest = {"version": VERSION, "generator_sha256": file_digest(generator), "entries": entries}
    path = store_path(generator)
    atomic_write_npz(path, manifest=np.array(json.dumps(manifest)), **members)
    return path
