"""Helpers shared by several test files (plain functions, not fixtures): wait, train a tiny run, save weights."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aigc.runs.lock import TrainingLock

REPO = Path(__file__).resolve().parent.parent
AIGC = [sys.executable, "-m", "aigc"]  # the command line, as users type it


def run_cli(*args: str, timeout: float = 180, env: dict | None = None, cwd: Path | None = None):
    """Run `python -m aigc ARGS` (from the repo root unless cwd) and capture its output."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([*AIGC, *args], cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def wait_until(predicate, *, timeout: float = 120, every: float = 0.2, what: str = "the condition",
               process: subprocess.Popen | None = None, details=lambda: ""):
    """Poll predicate() until it returns something truthy (returned); fail after timeout, or if process exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited ({process.returncode}) before {what}\n{details()}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{details()}")


def tiny_run(run_dir, data, *, epochs=1, resume=False, max_steps=None, **given) -> str:
    """Plan and train a tiny run in this process as `python -m aigc train` does (without the lock); its final state."""
    from aigc.engine.run_plan import Invocation, make_plan, save_plan
    from aigc.engine.trainer import run

    settings = dict(batch_size=64, data=str(data), eval_samples=0, log_every=2)
    settings.update(given)
    invocation = Invocation(Path(run_dir), add_epochs=None if resume else epochs, resume=resume, max_steps=max_steps)
    plan = make_plan(invocation, settings)
    if plan.done:
        return "nothing to do"
    save_plan(plan)
    return run(plan)


def save_untrained_generator(path: Path, *, preset: str = "dcgan", seed: int = 0, card: dict | None = None, **model):
    """An untrained generator saved as the app and trainer expect (config and card inside); returns path."""
    import keras

    from aigc.engine.checkpoints import save_model_file
    from aigc.engine.models import build_generator
    from aigc.engine.spec import ModelConfig

    keras.utils.set_random_seed(seed)
    config = ModelConfig(preset=preset, **model)
    save_model_file(build_generator(config), path, config=config, card=card or {"preset": preset, "epochs": 0})
    return Path(path)


def stop_trainers(runs: Path, timeout: float = 30) -> None:
    """SIGTERM (then SIGKILL) the trainer holding the lock of this runs folder, if any."""
    holder = TrainingLock(runs).holder()
    pid = (holder or {}).get("pid")
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while TrainingLock(runs).holder() and time.time() < deadline:
        time.sleep(0.2)
    if TrainingLock(runs).holder():
        os.kill(pid, signal.SIGKILL)
