"""Keep TensorFlow's C++ start-up noise (CUDA probes on a CPU machine, oneDNN notes) off the terminal and logs.

TF_CPP_MIN_LOG_LEVEL=3 silences what TensorFlow logs after absl's logging starts (cuInit errors,
"remapper failed"); the lines its shared libraries print while `import tensorflow` runs ignore
that variable, so the import runs with file descriptor 2 captured and only unknown lines are
replayed. `--verbose` (AIGC_VERBOSE=1, inherited by the trainer) keeps everything.
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

NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog|^[IWE]\d{4} .*\b(port|cudart_stub|"
                   r"cuda_platform|cuda_dnn|cuda_blas|cuda_fft|cpu_feature_guard|cuda_executor)\.cc:\d+\]"
                   r"|Unable to register cu(DNN|FFT|BLAS) factory|TensorFlow binary is optimized to use")
QUIET_MODULES = ("tensorflow", "keras")


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
    """Wraps the first import of tensorflow / keras in captured_stderr_fd, then steps aside."""

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
