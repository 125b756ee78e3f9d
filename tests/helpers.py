"""Helpers shared by several test files (plain functions, not fixtures): wait, train a tiny run, save weights, AppTest."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aigc.runs.lock import TrainingLock

REPO = Path(__file__).resolve().parent.parent
AIGC = [sys.executable, "-m", "aigc"]  # the command line, as users type it


def run_cli(*args: str, timeout: float = 180, env: dict | None = None, cwd: Path | None = None):
    """Run `python -m aigc ARGS` (from the repo root unless cwd) and capture its output."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([*AIGC, *args], cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def run_cli_here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`aigc ARGS` through aigc.cli.main in this process (from cwd, else the repo root), its output captured.

    For arguments the command line refuses before any work: milliseconds instead of a Python start each. The
    exit code is main()'s or SystemExit's; an exception propagates (where a process would print a traceback).
    The environment and import hooks that main() sets for a real process are put back afterwards.
    """
    import contextlib
    import io

    from aigc.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    environment, finders = dict(os.environ), list(sys.meta_path)
    try:
        os.chdir(cwd or REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(environment)
        sys.meta_path[:] = finders
    return subprocess.CompletedProcess(["aigc", *args], code, out.getvalue(), err.getvalue())


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


# ---- the app through Streamlit's AppTest (with the app_env fixture of conftest.py) ----------------------------------

APP = str(REPO / "app.py")
APP_TIMEOUT = 90


def run_app(**query):
    """app.py run once by AppTest with these URL query parameters."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    app.query_params.update({k: str(v) for k, v in query.items()})
    return app.run()


def texts(app, kind: str) -> list[str]:
    """The values of every element of one kind (error, markdown, ...) in the last run."""
    return [element.value for element in getattr(app, kind)]


def grid_url(app) -> str:
    return app.image[0].value[0]


def assert_clean(app) -> None:
    assert not app.exception, app.exception
    assert not texts(app, "error"), texts(app, "error")


def registered_paths(app) -> set[str]:
    """URL paths of the pages st.navigation registered in the last run ('' is the hidden root page)."""
    return {info.get("url_pathname") for info in app._registered_pages.values()}


def visit(app, view: str):
    """Go to another page in the same session (as an old ?view= link does: it redirects to /view)."""
    app.query_params["view"] = view
    return app.run()


def write_fake_run(root: Path, *, state: str, error: str | None = None, pid: int = 0):
    """A run folder as the trainer leaves it: status, metrics (step + epoch records), one sample grid."""
    import json

    import numpy as np
    from PIL import Image

    from aigc.engine.spec import RunSpec
    from aigc.runs.files import atomic_write_json
    from aigc.runs.layout import RunPaths

    run = RunPaths(root / "run-fake")
    now = time.time()
    atomic_write_json(run.status, {"state": state, "epoch": 2, "total_epochs": 4, "steps_per_epoch": 10,
                                   "step": 20, "step_in_epoch": 0, "img_per_s": 123.0, "error": error,
                                   "pid": pid, "updated_at": now, "finished_at": now})
    records = [{"kind": "step", "step": s, "epoch": 1 + s // 10, "g_loss": 1.0 + 0.01 * s, "d_loss": 1.2,
                "d_real": 0.6, "d_fake": 0.4} for s in range(2, 21, 2)]
    records += [{"kind": "epoch", "step": 10 * e, "epoch": e, "g_loss": 1.1, "d_loss": 1.2, "d_real": 0.6,
                 "d_fake": 0.4, "fdd": 30.0 / e, "digit_score": 5.0 + e, "class_accuracy": 0.5 + 0.1 * e,
                 "collapsed_digits": [] if e == 1 else [4]} for e in (1, 2)]
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"partial')
    run.samples.mkdir(parents=True)
    for epoch in (1, 2):
        Image.fromarray(np.full((30, 30), 40 * epoch, np.uint8)).save(run.sample_path(epoch))
    run.log.write_text("line 1\nValueError: boom in the trainer\n")
    atomic_write_json(run.config, {"spec": RunSpec.resolve(epochs=4).to_dict()})
    return run


def write_fake_inside(run, epoch: int, *, points: int = 20) -> None:
    """A look-inside file as engine/inside.py writes it (100 tile scores, a small map) and a 10 x 10 sample grid."""
    import numpy as np
    from PIL import Image

    from aigc.runs.files import atomic_write_json

    rng = np.random.default_rng(epoch)
    cloud = lambda shift: {"x": (rng.standard_normal(points) + shift).round(3).tolist(),  # noqa: E731
                           "y": rng.standard_normal(points).round(3).tolist(), "digit": [i % 10 for i in range(points)]}
    atomic_write_json(run.inside_path(epoch), {
        "format": 1, "epoch": epoch, "d_real_mean": 0.61,
        "tiles": {"columns": 10, "digits": [i // 10 for i in range(100)], "d": rng.random(100).round(4).tolist()},
        "map": {"explained": [0.3, 0.2], "real": cloud(0.0), "fake": dict(cloud(5.0 / epoch), colored_by="asked")}})
    run.samples.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (302, 302), dtype=np.uint8)).save(run.sample_path(epoch))


# ---- servers on loopback: `streamlit run app.py` (browser tests) and nginx in front of replicas ---------------------

SERVER_START_S = 90


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, *, path: str = "/_stcore/health",
                 timeout: float = SERVER_START_S) -> None:
    """Until url + path answers 200; fails at once if the process exits first, else after timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy within {timeout:.0f} s")


def shipped_or_tiny_checkpoints(folder: Path) -> Path:
    """The repository's checkpoints/ when its generator exists (read-only for the app), else tiny stand-ins."""
    if (REPO / "checkpoints" / "generator.keras").is_file():
        return REPO / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    save_untrained_generator(folder / "generator.keras")
    return folder


def loopback_conf(text: str, *, listen: int, replicas: list[int], folder: Path) -> str:
    """deploy/nginx.conf with loopback ports for nginx and the replicas, and its files under folder."""
    names = re.findall(r"server (app-\d+):8501", text)
    assert len(names) == len(replicas) == 2
    for name, port in zip(names, replicas):
        text = text.replace(f"server {name}:8501", f"server 127.0.0.1:{port}")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                            "scgi"))
    return text.replace("http {", f"http {{\n    access_log {folder / 'access.log'};\n{temp}", 1)


def ema_distances_after_one_step(gan) -> tuple[float, float]:
    """(EMA weights to the trained weights, EMA weights to the starting weights) after one step on 32 synthetic images."""
    import numpy as np

    from aigc.engine.data import synthetic_mnist

    arrays = synthetic_mnist(32, 8)
    start = [w.copy() for w in gan.generator.get_weights()]
    gan.attach_data(arrays["x_train"], arrays["y_train"])
    gan.train_steps(np.arange(32, dtype=np.int32)[None])
    ema, trained = gan.ema_generator.get_weights(), gan.generator.get_weights()
    to_trained = sum(float(np.abs(e - t).sum()) for e, t in zip(ema, trained))
    to_start = sum(float(np.abs(e - s).sum()) for e, s in zip(ema, start))
    return to_trained, to_start
