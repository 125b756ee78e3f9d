"""The server process is tuned for serving: one TensorFlow setting, once, only with a real connection."""
from __future__ import annotations

import subprocess
import sys
import threading
from types import SimpleNamespace

from aigc.app import frame
from aigc.settings import ROOT


def test_tuning_turns_grappler_off_in_that_process_only():
    """Streamlit empties TF's kernel cache after every run: grappler then re-optimized each model per request
    (92 ms of CPU per New seed request against 48 ms without it; engine/sampling.py)."""
    code = ("import tensorflow as tf; from aigc.engine.sampling import tune_for_a_server; "
            "before = tf.config.optimizer.get_experimental_options().get('disable_meta_optimizer', False); "
            "tune_for_a_server(); "
            "print(before, tf.config.optimizer.get_experimental_options()['disable_meta_optimizer'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.stdout.split()[-2:] == ["False", "True"], result.stdout + result.stderr


def test_only_a_connected_server_is_tuned_and_only_once(monkeypatch):
    """AppTest runs share the test process with in-process training: they have no connection and are left alone."""
    import aigc.engine.sampling as sampling

    calls = []
    monkeypatch.setattr(sampling, "tune_for_a_server", lambda: calls.append(1))
    monkeypatch.setattr(frame, "_TUNED", threading.Event())
    monkeypatch.setattr(frame, "st", SimpleNamespace(context=SimpleNamespace(headers={})))
    frame.tune_once()
    assert calls == []
    monkeypatch.setattr(frame, "st", SimpleNamespace(context=SimpleNamespace(headers={"Host": "example"})))
    frame.tune_once()
    frame.tune_once()
    assert calls == [1]
