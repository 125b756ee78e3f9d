"""A quiet CLI: no TensorFlow C++ noise on a CPU machine unless --verbose; `pip install .` declares an `aigc` command."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aigc.quiet import noise_free
from helpers import run_cli, save_untrained_generator

REPO = Path(__file__).resolve().parent.parent
# What TF_CPP_MIN_LOG_LEVEL=3 alone leaves of `import tensorflow` (TensorFlow 2.21, no GPU): printed before absl logs.
NOISE_SEEN = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              "I0000 00:00:1796606974.755710   12475 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
              "GPU will not be used.\n")
# ... and on a CPU with AVX512-BF16, where TensorFlow turns oneDNN on (seen 2026-12-08 on an AMD EPYC).
ONEDNN_SEEN = ("I0000 00:00:1796700994.323659   18050 port.cc:153] oneDNN custom operations are on. You may see "
               "slightly different numerical results due to floating-point round-off errors from different "
               "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
# What the variable silences, so the filter must not hide it when someone lowers the level by hand.
LEVEL_SILENCES = "E0000 00:00:1796606847.704105    9521 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"


def test_known_noise_is_dropped_and_everything_else_kept():
    assert noise_free(NOISE_SEEN * 2) == ""
    assert noise_free(ONEDNN_SEEN + NOISE_SEEN + ONEDNN_SEEN) == ""
    assert noise_free(NOISE_SEEN + "Traceback: a real problem\n") == "Traceback: a real problem\n"
    assert noise_free(NOISE_SEEN + LEVEL_SILENCES) == LEVEL_SILENCES


@pytest.mark.slow
def test_generate_prints_no_tensorflow_noise_unless_verbose(tmp_path):
    checkpoint = save_untrained_generator(tmp_path / "generator.keras")
    args = ("generate", "--n", "2", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "grid.png"))
    quiet = run_cli(*args)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = run_cli("--verbose", *args)
    assert loud.returncode == 0 and ("absl" in loud.stderr or "I0000" in loud.stderr), loud.stderr


def test_pyproject_declares_the_aigc_command_and_its_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["aigc"] == "aigc.cli:main"
    declared = {d.split(">")[0].split("<")[0].split("=")[0].strip() for d in project["dependencies"]}
    pinned = {line.split("==")[0] for line in (REPO / "requirements.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    assert pinned <= declared, pinned - declared  # every pinned runtime package is declared
    assert not any("==" in d for d in project["dependencies"])  # ranges here, pins in requirements.txt
