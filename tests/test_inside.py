"""A look inside the GAN (engine/inside.py, app/inside.py): D's score per sample tile and the evaluator's feature map."""
from __future__ import annotations

import io
import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import assert_clean, run_app, texts, write_fake_inside, write_fake_run

from aigc.engine import inside
from aigc.engine.data import synthetic_mnist
from aigc.runs.layout import RunPaths

HEADING = "**Inside the GAN** - what the discriminator thinks"


def pooled_features(images) -> np.ndarray:
    """A stand-in evaluator's features (N, 49): the images (N, 28, 28) in [0, 1] pooled 4x4."""
    images = np.asarray(images, np.float64)
    return images.reshape(len(images), 7, 4, 7, 4).mean(axis=(2, 4)).reshape(len(images), 49)


def stub_evaluator(real_images_uint8: np.ndarray):
    """An evaluator whose reference statistics are those of these real digits, as evaluator_train makes them."""
    real = pooled_features(real_images_uint8 / 255.0)

    def outputs(images):
        features = pooled_features(images)
        probs = np.full((len(images), 10), 0.01)
        probs[:, 3] = 0.91
        return features, probs

    return SimpleNamespace(mu=real.mean(axis=0), sigma=np.cov(real, rowvar=False), outputs=outputs)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inside") / "mnist.npz"
    np.savez(path, **synthetic_mnist(64, 600, seed=3))
    return path


@pytest.fixture(scope="module")
def tiny_gan():
    """(generator, discriminator, config) of an untrained, narrow conditional dcgan."""
    from aigc.engine.models import build_discriminator, build_generator
    from aigc.engine.spec import ModelConfig

    config = ModelConfig(preset="dcgan", base_filters=8, latent_dim=16)
    return build_generator(config), build_discriminator(config), config


def test_the_plane_is_the_pca_of_real_digits():
    rng = np.random.default_rng(0)
    direction = np.zeros(6)
    direction[2] = 1.0
    features = rng.standard_normal((2000, 6)) * 0.2 + np.outer(rng.standard_normal(2000) * 3.0, direction)
    fitted = inside.pca_basis(features)
    from_stats = inside.basis_from_stats(features.mean(axis=0), np.cov(features, rowvar=False))
    np.testing.assert_allclose(fitted.axes, from_stats.axes)
    assert abs(fitted.axes[0] @ direction) > 0.99, "the first axis is the real digits' widest spread"
    np.testing.assert_allclose(fitted.axes @ fitted.axes.T, np.eye(2), atol=1e-9)
    assert fitted.explained[0] > 0.9 > fitted.explained[1] > 0
    flipped = inside.basis_from_stats(features.mean(axis=0), np.cov(-features, rowvar=False))
    np.testing.assert_allclose(flipped.axes, fitted.axes)  # eigh's arbitrary signs are fixed: the same picture
    points = fitted.project(features)
    assert points.shape == (2000, 2) and abs(points.mean(axis=0)).max() < 1e-9  # centered on the real digits


def test_real_digits_are_test_digits_of_every_digit_the_same_each_time(data_file):
    images, labels = inside.real_digits(str(data_file))
    test = np.load(data_file)
    assert images.dtype == np.uint8 and images.shape == (300, 28, 28) and sorted(set(labels)) == list(range(10))
    assert np.bincount(labels).tolist() == [30] * 10
    assert all(any((image == candidate).all() for candidate in test["x_test"]) for image in images[:5])
    again = inside.real_digits(str(data_file))
    assert (again[0] == images).all() and (again[1] == labels).all()
    assert inside.real_digits(str(data_file.parent / "missing.npz")) is None


def test_look_inside_shapes_ranges_and_determinism(tiny_gan, data_file):
    generator, discriminator, config = tiny_gan
    real = inside.real_digits(str(data_file))
    evaluator = stub_evaluator(real[0])
    found = inside.look_inside(generator, discriminator, config, seed=1234, columns=10, real=real, evaluator=evaluator)
    tiles = found["tiles"]
    assert tiles["columns"] == 10 and tiles["digits"] == np.repeat(np.arange(10), 10).tolist()
    assert len(tiles["d"]) == 100 and all(0.0 < d < 1.0 for d in tiles["d"])
    assert 0.0 < found["d_real_mean"] < 1.0
    fake, shown = found["map"]["fake"], found["map"]["real"]
    assert len(fake["x"]) == len(fake["y"]) == len(fake["digit"]) == 100 + inside.EXTRA_FAKES
    assert fake["digit"][:100] == tiles["digits"] and fake["colored_by"] == "asked"
    assert len(shown["x"]) == 300 and shown["digit"] == real[1].tolist()
    # The plane is fitted on the real digits: their cloud is centered, widest along the first axis.
    xy = np.array([shown["x"], shown["y"]])
    assert abs(xy.mean(axis=1)).max() < 1e-2 and xy[0].var() >= xy[1].var()
    assert 1.0 >= found["map"]["explained"][0] >= found["map"]["explained"][1] > 0
    again = inside.look_inside(generator, discriminator, config, seed=1234, columns=10, real=real, evaluator=evaluator)
    assert json.dumps(again, sort_keys=True) == json.dumps(found, sort_keys=True)
    other = inside.look_inside(generator, discriminator, config, seed=99, columns=10, real=real, evaluator=evaluator)
    assert other["tiles"]["d"] != found["tiles"]["d"]  # the tiles are the grid's seed's


def test_without_evaluator_or_data_only_the_tile_scores(tiny_gan):
    generator, discriminator, config = tiny_gan
    found = inside.look_inside(generator, discriminator, config, seed=1, columns=5)
    assert found["map"] is None and found["d_real_mean"] is None and len(found["tiles"]["d"]) == 50


def test_an_unconditional_generator_is_colored_by_what_the_evaluator_reads(data_file):
    from aigc.engine.models import build_discriminator, build_generator
    from aigc.engine.spec import ModelConfig

    config = ModelConfig(preset="seed", latent_dim=16)
    real = inside.real_digits(str(data_file))
    found = inside.look_inside(build_generator(config), build_discriminator(config), config, seed=1, columns=10,
                               real=real, evaluator=stub_evaluator(real[0]))
    assert found["map"]["fake"]["colored_by"] == "read" and set(found["map"]["fake"]["digit"]) == {3}


def test_save_epoch_writes_one_file_atomically_and_never_raises(tiny_gan, data_file, tmp_path, monkeypatch):
    generator, discriminator, config = tiny_gan
    gan = SimpleNamespace(serving_generator=generator, discriminator=discriminator, config=config,
                          spec=SimpleNamespace(data=str(data_file)))
    paths, logged = RunPaths(tmp_path / "run"), []
    inside.save_epoch(paths, 3, gan, seed=1234, columns=10, log=logged.append)
    written = json.loads(paths.inside_path(3).read_text())
    assert written["epoch"] == 3 and len(written["tiles"]["d"]) == 100 and not logged
    assert sorted(p.name for p in paths.inside.iterdir()) == ["epoch_0003.json"]  # no temporary file left
    before = paths.inside_path(3).read_bytes()

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)  # the rename of a fully written temporary file fails
    inside.save_epoch(paths, 3, gan, seed=1, columns=10, log=logged.append)
    assert paths.inside_path(3).read_bytes() == before, "a failed write must leave the previous file whole"
    assert sorted(p.name for p in paths.inside.iterdir()) == ["epoch_0003.json"] and not paths.leftovers()
    assert logged == ["inside view skipped: OSError: disk full"]
    inside.save_epoch(paths, 4, gan, seed=1, columns=10, chief=False, log=logged.append)
    assert not paths.inside_path(4).exists()  # only the chief writes the run directory


def test_a_real_run_writes_one_look_inside_per_epoch(trained_run):
    paths = RunPaths(trained_run)
    assert [p.name for p in sorted(paths.inside.iterdir())] == ["epoch_0001.json", "epoch_0002.json"]
    found = json.loads(paths.inside_path(2).read_text())
    assert found["epoch"] == 2 and len(found["tiles"]["d"]) == 100
    if found["map"] is not None:  # with the shipped evaluator
        assert len(found["map"]["fake"]["x"]) == 100 + inside.EXTRA_FAKES and found["map"]["real"]["x"]


def test_the_train_page_shows_tile_scores_and_the_map(app_env, trained_run):
    shutil.copytree(trained_run, app_env / "run")
    app = run_app(view="train")
    assert_clean(app)
    assert HEADING in " ".join(texts(app, "markdown"))
    slider = [s for s in app.select_slider if s.label == "Epoch inside the GAN"]
    assert slider and slider[0].value == 2
    captions = " ".join(texts(app, "caption"))
    assert "Frame and number: D(x), the discriminator's probability" in captions
    assert len(app.get("image")) == 2  # the samples, and the same tiles with their scores
    if json.loads((app_env / "run" / "inside" / "epoch_0002.json").read_text())["map"] is not None:
        assert "grey dots are real digits" in captions
        assert len(app.get("plotly_chart")) == 4  # losses, D outputs, quality, the map
    slider[0].set_value(1).run()
    assert_clean(app)
    assert [s.value for s in app.select_slider if s.label == "Epoch inside the GAN"] == [1]
    assert len(app.get("image")) == 2


def test_a_run_without_look_inside_files_gets_a_one_line_note(app_env):
    write_fake_run(app_env, state="finished")
    app = run_app(view="train")
    assert_clean(app)
    assert any(text.startswith("Inside the GAN: nothing recorded for this run yet") for text in texts(app, "caption"))
    assert HEADING not in " ".join(texts(app, "markdown"))


def test_an_unreadable_look_inside_file_says_so(app_env):
    run = write_fake_run(app_env, state="finished")
    write_fake_inside(run, 1)
    run.inside_path(2).write_text('{"tiles": ')  # a torn file: the newest epoch
    app = run_app(view="train")
    assert_clean(app)
    assert "The look inside epoch 2 is unreadable." in texts(app, "caption")


def test_the_map_traces_each_digits_center_through_the_earlier_epochs(tmp_path):
    from aigc.app import inside as view_inside

    run = RunPaths(tmp_path / "run")
    for epoch in (1, 2, 3):
        write_fake_inside(run, epoch)
    assert view_inside.inside_epochs(run) == [1, 2, 3]
    view = view_inside.epoch_view(run, 3, earlier=[1, 2])
    paths = [trace for trace in view.figure.data if trace.mode == "lines+markers"]
    assert len(paths) == 10 and all(len(trace.x) == 3 for trace in paths)
    first_centers = json.loads(run.inside_path(1).read_text())["map"]["fake"]
    zero = [x for x, d in zip(first_centers["x"], first_centers["digit"]) if d == 0]
    assert paths[0].x[0] == pytest.approx(np.mean(zero))  # the path starts at epoch 1's center of the 0s
    x_range = view.figure.layout.xaxis.range
    assert all(x_range[0] <= x <= x_range[1] for trace in paths for x in trace.x)
    tiles = view_inside.Image.open(io.BytesIO(view.tiles_png))
    assert tiles.size[0] >= 600 and view.d_real_mean == 0.61
    assert view_inside.epoch_view(run, 1).figure is not None  # no earlier epoch: no path, still a map


def test_a_killed_writers_temporary_look_inside_is_a_leftover(tmp_path):
    paths = RunPaths(tmp_path / "run")
    paths.inside.mkdir(parents=True)
    torn = paths.inside / ".epoch_0002.json.abc123.tmp"
    torn.write_text('{"tiles"')
    assert paths.leftovers() == [torn]  # removed, with the others, when the run starts or resumes
