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


def test_only_a_connected_server_warms_up_and_only_once(monkeypatch, tmp_path):
    """AppTest runs share the test process with in-process training: they have no connection and are left alone.
    A server warms up once, in the background: TensorFlow tuned, then the served generator loaded."""
    import aigc.engine.sampling as sampling

    calls = []
    monkeypatch.setattr(sampling, "tune_for_a_server", lambda: calls.append("tuned"))
    monkeypatch.setattr(frame, "load_served", lambda path: calls.append(("loaded", path)))
    monkeypatch.setattr(frame, "_TUNED", threading.Event())
    monkeypatch.setattr(frame, "WARM_UP_AFTER_S", 0.0)
    served = SimpleNamespace(path=tmp_path / "generator.keras")
    monkeypatch.setattr(frame, "st", SimpleNamespace(context=SimpleNamespace(headers={})))
    assert frame.warm_up_once(served) is None
    assert calls == []
    monkeypatch.setattr(frame, "st", SimpleNamespace(context=SimpleNamespace(headers={"Host": "example"})))
    frame.warm_up_once(served).join(timeout=60)
    assert frame.warm_up_once(served) is None
    assert calls[:2] == ["tuned", ("loaded", served.path)]
