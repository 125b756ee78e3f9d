"""Model cards: lineage ('30 shipped + 2 here'), quality, data, time, hardware, recipe; README download; local-only file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from aigc.engine.checkpoints import lineage_of, read_meta, run_card, training_seconds
from aigc.engine.spec import ModelConfig, RunSpec
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths
from helpers import assert_clean, run_app, save_untrained_generator, texts, tiny_run, visit

SHIPPED_CARD = {"preset": "dcgan", "epochs": 30, "run_dir": "runs/ship_dcgan", "step": 14040}


def test_run_card_records_lineage_data_time_hardware_and_recipe(tmp_path):
    parent = save_untrained_generator(tmp_path / "generator.keras", card=SHIPPED_CARD)
    paths = RunPaths(tmp_path / "runs" / "run-a")
    paths.root.mkdir(parents=True)
    paths.metrics.write_text(json.dumps({"kind": "epoch", "epoch": 1, "epoch_time_s": 50.0, "time": 1000.0}) + "\n")
    atomic_write_json(paths.status, {"started_at": 990.0})
    spec = RunSpec.resolve(epochs=2, init_from=str(parent), data=str(tmp_path / "secret" / "mnist.npz"))
    card = run_card(spec, epoch=2, step=20, paths=paths)
    assert card["base_epochs"] == 30 and card["epochs"] == 2 and card["run"] == "run-a"
    assert card["lineage"] == [{"file": "generator.keras", "epochs": 30, "run": "runs/ship_dcgan"}]
    assert card["data"] == {"file": "mnist.npz", "train_images": 60000}  # no server folder
    assert card["recipe"]["batch_size"] == spec.batch_size and "init_from" not in card["recipe"]
    assert card["hardware"]["cpu_threads"] and card["hardware"]["accelerators"]
    assert card["training_seconds"] > 50.0
    assert training_seconds([{"kind": "epoch", "epoch": 1, "epoch_time_s": 50.0, "time": 1000.0}], {}, epoch=2,
                            now=1010.0) == 60.0


def test_lineage_chains_through_generations(tmp_path):
    first = save_untrained_generator(tmp_path / "a.keras", card=SHIPPED_CARD)
    second = save_untrained_generator(tmp_path / "b.keras", card={"epochs": 2, "run": "run-b", "base_epochs": 30,
                                                                    "lineage": lineage_of(first)})
    assert [link["epochs"] for link in lineage_of(second)] == [30, 2]
    assert lineage_of(tmp_path / "gone.keras") == [{"file": "gone.keras", "epochs": None, "run": None}]


@pytest.mark.slow
def test_a_trained_run_writes_its_card_into_the_generator(tmp_path, synthetic_npz):
    parent = save_untrained_generator(tmp_path / "generator.keras", card=SHIPPED_CARD)
    assert tiny_run(tmp_path / "run", synthetic_npz, epochs=1, init_from=str(parent)) == "finished"
    _config, card = read_meta(tmp_path / "run" / "generator.keras")
    assert card["epochs"] == 1 and card["base_epochs"] == 30 and card["lineage"][0]["epochs"] == 30
    assert card["training_seconds"] > 0 and card["recipe"]["batch_size"] == 64


def continued_run(root) -> RunPaths:
    """A run continued from 30 shipped epochs, 2 here, with its last evaluation in metrics.jsonl."""
    paths = RunPaths(root / "run-continued")
    card = {"preset": "dcgan", "epochs": 2, "step": 20, "run": paths.name, "base_epochs": 30, "init_from":
            "checkpoints/generator.keras", "lineage": [{"file": "checkpoints/generator.keras", "epochs": 30}],
            "training_seconds": 125.0, "data": {"file": "mnist.npz", "train_images": 60000},
            "hardware": {"cpu": "Test CPU", "cpu_threads": 2, "accelerators": ["none"], "precision": "float32"},
            "recipe": {"batch_size": 64, "lr_g": 0.0002}}
    save_untrained_generator(paths.generator, card=card)
    atomic_write_json(paths.status, {"state": "finished", "epoch": 2, "total_epochs": 2})
    paths.metrics.write_text(json.dumps({"kind": "epoch", "step": 20, "epoch": 2, "fdd": 7.5, "digit_score": 9.1,
                                         "class_accuracy": 0.97}) + "\n")
    return paths


def model_page_of_the_run(app_env):
    continued_run(app_env)
    app = run_app(view="model")
    app.sidebar.selectbox(key="generator_choice").set_value("Newest trained run").run()
    assert_clean(app)
    return app


def test_model_page_tells_lineage_quality_and_has_real_headers(app_env):
    app = model_page_of_the_run(app_env)
    card = app.table[0].value
    assert list(card.columns) == ["Property", "Value"]
    facts = dict(zip(card["Property"], card["Value"]))
    assert facts["Epochs trained"] == "30 shipped + 2 here"
    assert facts["Lineage"] == "checkpoints/generator.keras (30 epochs) -> Newest trained run (run-continued) (2 epochs)"
    assert facts["Training time"] == "2 min 5 s" and "Test CPU, 2 CPU threads" in facts["Hardware"]
    assert facts["Data"] == "MNIST (mnist.npz, 60,000 training images)"
    quality = app.table[1].value
    assert list(quality.columns) == ["Metric", "Value", "Reading"] and "7.5" in list(quality["Value"])
    assert "after epoch 2" in " ".join(texts(app, "markdown"))


def test_model_card_downloads_as_a_hugging_face_readme(app_env):
    from aigc.serve.model_card import readme

    app = model_page_of_the_run(app_env)
    labels = [button.label for button in app.get("download_button")]
    assert labels == ["Download model card (README.md)", "Download the generator (.keras)"]  # local mode
    config = ModelConfig(preset="dcgan")
    text = readme("Shipped", config, {"epochs": 30}, {"fdd": 4.46, "class_accuracy": 0.99})
    front = text.split("---")[1]
    for line in ("library_name: keras", "  - ylecun/mnist", "  - fdd", "  - class_accuracy", "model-index:",
                 "            value: 4.46"):
        assert line in front.splitlines()
    assert "| Epochs trained | 30 |" in text and "| Frechet digit distance | 4.46 |" in text


def test_hosted_mode_does_not_hand_out_the_generator_file(app_env, monkeypatch):
    monkeypatch.setenv("AIGC_TRAINING", "off")
    app = run_app(view="model")
    assert_clean(app)
    assert [button.label for button in app.get("download_button")] == ["Download model card (README.md)"]
    visit(app, "generate")
    assert app.image


def test_shipped_eval_json_is_the_quality_source(tmp_path):
    from aigc.serve.model_card import quality_of

    generator = tmp_path / "generator.keras"
    (tmp_path / "generator_eval.json").write_text(json.dumps({"fdd": 4.46, "digit_score": 9.9, "n": 10000,
                                                              "class_accuracy": np.float64(0.99).item()}))
    quality, source = quality_of(generator)
    assert quality == {"fdd": 4.46, "digit_score": 9.9, "class_accuracy": 0.99} and "10000 samples" in source


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (12.4, "12 s"), (95, "1 min 35 s"), (600, "10 min"),
                                           (4000, "1 h 6 min"), (7200, "2 h")])
def test_one_way_to_write_a_duration(seconds, text):
    from aigc.text import duration

    assert duration(seconds) == text
    assert duration(0.2, round_up=True) == "1 s" and duration(60.5, round_up=True) == "1 min 1 s"  # a wait: never less
