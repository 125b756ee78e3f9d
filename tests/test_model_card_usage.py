"""The model card's usage snippet runs as written against each preset's generator, and every quality figure on a
card says how many samples it was measured on."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from aigc.engine.spec import ModelConfig
from aigc.runs.files import atomic_write_json
from helpers import save_untrained_generator


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


@pytest.mark.parametrize("preset, latent_dim", [("dcgan", 100), ("seed", 16)])
def test_the_usage_snippet_runs_against_a_generator_of_each_preset(tmp_path, monkeypatch, preset, latent_dim):
    from aigc.serve.model_card import readme

    save_untrained_generator(tmp_path / "generator.keras", preset=preset, latent_dim=latent_dim)
    config = ModelConfig(preset=preset, latent_dim=latent_dim)
    blocks = python_blocks(readme("A run", config, {"epochs": 1}, {}))
    assert len(blocks) == 1, "the card shows one usage snippet"
    monkeypatch.chdir(tmp_path)  # the snippet loads generator.keras, as a reader beside the file would
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102  (the card's own example, as a reader runs it)
    images = np.asarray(scope["images"])
    assert images.shape[1:] == (28, 28, 1) and len(images) >= 1
    assert np.isfinite(images).all() and images.min() >= -1.0 and images.max() <= 1.0
    if config.conditional:
        assert '"label"' in blocks[0]
    else:
        assert "label" not in blocks[0]


def test_the_card_says_1_epoch_for_one(tmp_path):
    from aigc.serve.model_card import lineage_text

    text = lineage_text({"epochs": 1, "lineage": [{"file": "checkpoints/generator.keras", "epochs": 1}]}, "this file")
    assert text == "checkpoints/generator.keras (1 epoch) -> this file (1 epoch)"


def test_a_runs_quality_says_its_sample_count(tmp_path):
    from aigc.serve.model_card import quality_of, readme

    run = tmp_path / "runs" / "run"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "epoch", "epoch": 2, "step": 16, "fdd": 7.5,
                                                   "eval_n": 2000}) + "\n")
    quality, source = quality_of(run / "generator.keras")
    assert quality == {"fdd": 7.5} and "after epoch 2" in source and "2,000 samples" in source, source
    text = readme("run", ModelConfig(preset="seed"), {"epochs": 2}, quality, source=source)
    assert "2,000 samples" in text.split("## Quality")[1], text


def test_a_run_recorded_before_sample_counts_takes_its_specs(tmp_path):
    from aigc.serve.model_card import quality_of

    run = tmp_path / "runs" / "run"
    run.mkdir(parents=True)
    atomic_write_json(run / "config.json", {"spec": {"preset": "seed", "epochs": 2, "eval_samples": 500}})
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "epoch", "epoch": 2, "step": 16, "fdd": 7.5}) + "\n")
    _quality, source = quality_of(run / "generator.keras")
    assert "500 samples" in source, source


def test_quality_from_the_card_alone_says_its_count_is_unknown(tmp_path):
    from aigc.serve.model_card import quality_of

    _quality, source = quality_of(tmp_path / "generator.keras", {"fdd": 12.5})
    assert "sample count not recorded" in source, source
