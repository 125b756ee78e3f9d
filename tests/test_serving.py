"""The server process is tuned for serving: one TensorFlow setting, once, only with a real connection."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
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


def test_the_warm_up_imports_tensorflow_only_between_page_runs(monkeypatch, tmp_path):
    """Two threads importing TensorFlow at once break it (bench --browser: a Draw right after the first page failed
    with "dataset_ops has no attribute 'DatasetV2'", New seed with "Registering two gradient with name
    'ReduceDataset'"). The warm-up waits for the runs in flight; runs that start meanwhile wait for the warm-up.
    Then the heap is frozen again after the next page (for 5 minutes every run collected TensorFlow's objects)."""
    import aigc.engine.sampling as sampling

    events = []
    monkeypatch.setattr(frame, "WARM_UP_AFTER_S", 0.0)
    monkeypatch.setattr(sampling, "tune_for_a_server", lambda: events.append("warm-up starts"))
    monkeypatch.setattr(frame, "load_served", lambda path: (time.sleep(0.5), events.append("warm-up ends")))
    monkeypatch.setattr(frame, "_FROZEN", {"at": time.monotonic(), "kept": 0})

    def page(name):
        with frame.script_run():
            events.append(name)

    with frame.script_run():  # a page is running when the warm-up wakes
        warm_up = threading.Thread(target=frame._warm_up, args=(tmp_path / "generator.keras",))
        warm_up.start()
        time.sleep(0.3)
        assert events == [], "the warm-up imported TensorFlow while a page ran"
    while "warm-up starts" not in events:
        time.sleep(0.01)
    later = threading.Thread(target=page, args=("a page during the warm-up",))
    later.start()
    later.join(timeout=10)
    warm_up.join(timeout=10)
    assert events[:3] == ["warm-up starts", "warm-up ends", "a page during the warm-up"], events
    assert frame._FROZEN["at"] is None  # due again
