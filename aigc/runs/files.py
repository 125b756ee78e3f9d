"""The one place that writes files atomically and reads them back tolerantly (JSON, JSON lines, PNG)."""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

TEMP_SUFFIX = ".tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_with(path: Path, write: Callable[[Path], None], *, suffix: str = "") -> None:
    """Replace path atomically with what write(temporary path) writes: a hidden name in the same folder, fsync, os.replace.

    suffix ends the temporary name, for writers that choose the format by extension (Keras wants '.keras').
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX + suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; other readers (a container's user) need the usual mode
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace path atomically with data."""
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_npz(path: Path, **arrays) -> None:
    """Atomically replace path with a plain (uncompressed, pickle-free) .npz of arrays."""
    import numpy as np  # only this writer needs it

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_json(path: Path, data: dict) -> None:
    """Atomically replace path with data as JSON (NaN/inf written as null)."""
    atomic_write_bytes(path, json.dumps(json_safe(data), indent=1, sort_keys=True).encode())


def overwrite_json_in_place(path: Path, data: dict) -> None:
    """Last resort when the disk is full: rewrite path's existing blocks (not atomic; used only to record a failure)."""
    payload = json.dumps(json_safe(data), sort_keys=True).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


def json_safe(value):
    """value with every non-finite float (NaN, inf) replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def finite_number(value) -> float | None:
    """A JSON value as a float when it is a finite number (not a bool), else None: what a reader may plot or sum."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def append_metrics(path: Path, record: dict) -> None:
    """Append one JSON line; a crash mid-write leaves a partial last line that readers skip."""
    line = (json.dumps(json_safe(record), sort_keys=True) + "\n").encode()
    with open(path, "ab+") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line  # a killed writer left a partial line: do not glue this record to it
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_json(path: Path) -> dict | None:
    """The JSON object at path, or None when missing, partial or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(path: Path) -> list[dict]:
    """All complete, valid records of a metrics.jsonl (partial or corrupt lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # a partial last line: the writer is mid-append
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def png_bytes(picture) -> bytes:
    """A PIL image encoded as PNG bytes (the one PNG encoder of the project)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # lossless either way; level 1 encodes several times faster
    return buffer.getvalue()
