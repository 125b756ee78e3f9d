"""Keep TensorFlow's C++ start-up noise off the terminal and logs; `--verbose` (AIGC_VERBOSE=1) keeps it.

TF_CPP_MIN_LOG_LEVEL=3 silences most of it: the CPU feature note and the cuInit error. Measured with
TensorFlow 2.21 on a CPU-only machine, what the variable alone leaves on stderr for
`TF_CPP_MIN_LOG_LEVEL=3 AIGC_VERBOSE=1 python -m aigc generate --n 4 --out /tmp/x.png`, and for a
`streamlit run app.py` start with one session opened, is the same four lines, twice while `import
tensorflow` runs: "WARNING: All log messages before absl::InitializeLog() is called are written to
STDERR" and "I... cudart_stub.cc:31] Could not find cuda drivers on your machine"; on a CPU with
AVX512-BF16, where TensorFlow turns oneDNN on, also "I... port.cc:153] oneDNN custom operations are
on". They are printed by absl before its logging starts, which no variable controls (absl reads no environment;
GLOG_minloglevel, ABSL_MIN_LOG_LEVEL and *_stderrthreshold changed nothing). So the variable does
the work, and the first import of tensorflow runs with file descriptor 2 captured, dropping
only those lines (NOISE) and replaying everything else.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

from aigc import settings
from aigc.settings import VERBOSE_ENV

NOISE = re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"
                   r"|^I\d{4} .*\bcudart_stub\.cc:\d+\] Could not find cuda drivers"
                   r"|^I\d{4} .*\bport\.cc:\d+\] oneDNN custom operations are on")
QUIET_MODULES = ("tensorflow",)  # keras imports it too, so this covers `import keras` first


def verbose() -> bool:
    """True when the user asked for TensorFlow's own logging (--verbose or AIGC_VERBOSE=1)."""
    return settings.env(VERBOSE_ENV) not in ("", "0")


def quiet_tensorflow(*, keep: bool = False) -> None:
    """Before TensorFlow loads: raise its C++ log level and drop its import-time lines; keep=True keeps all."""
    if keep:
        os.environ[VERBOSE_ENV] = "1"
    if verbose():
        return
    if settings.env("TF_CPP_MIN_LOG_LEVEL") in ("", "2"):  # unset, or the old default: errors are noise too here
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # 0 or 1 set by hand is respected
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def noise_free(text: str) -> str:
    """text without the lines NOISE matches (what a quiet import replays to stderr)."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.search(line))


@contextlib.contextmanager
def captured_stderr_fd():
    """Run a block with file descriptor 2 sent to a temporary file; afterwards its non-noise lines go to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = noise_free(sink.read().decode("utf-8", "replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Wraps the first import of tensorflow in captured_stderr_fd, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name not in QUIET_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Delegates to the real loader with stderr captured during exec_module."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with captured_stderr_fd():
            self.loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)
