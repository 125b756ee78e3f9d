"""Explore engine: number layout, drawing preprocessing, calibration and OOD, style directions, inversion."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc.explore import calibration as cal
from aigc.explore import directions as dirs
from aigc.explore import params
from aigc.explore.corrupt import blobs, corrupt
from aigc.explore.layout import compose_page, compose_row, parse_number, tight_crop
from aigc.explore.preprocess import DrawingError, decode_png, mnist_style
from aigc.quality import metrics

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "checkpoints" / "generator.keras"
needs_shipped = pytest.mark.skipif(not (SHIPPED.is_file() and metrics.evaluator_available()),
                                   reason="shipped generator or evaluator missing")


@pytest.fixture(scope="module")
def real():
    """(images (500, 28, 28) in [0, 1], labels (500,)) from the committed MNIST test fixture."""
    with np.load(REPO / "tests" / "data" / "mnist_test_500.npz") as npz:
        return npz["x"].astype(np.float32) / 255.0, npz["y"].astype(np.int64)


@pytest.fixture(scope="module")
def shipped():
    from aigc.engine.checkpoints import load_generator

    return load_generator(SHIPPED)[0]


@pytest.mark.parametrize("text, digits", [("2026", "2026"), (" 20 26 ", "2026"), ("0" * 16, "0" * 16)])
def test_parse_number_accepts_digits(text, digits):
    assert parse_number(text) == (digits, None)


@pytest.mark.parametrize("text, says", [("", "Type a number"), ("1" * 17, "Up to 16"), ("12a4", "'a'"),
                                        ("١٢", "Digits 0-9 only"), ("-5", "'-'")])
def test_parse_number_explains_in_one_line(text, says):
    digits, problem = parse_number(text)
    assert digits == "" and says in problem and "\n" not in problem


def test_tight_crop_and_row_spacing_are_natural():
    digit = np.zeros((28, 28), np.float32)
    digit[5:20, 10:16] = 1.0
    assert tight_crop(digit).shape == (28, 6)
    line = compose_row(np.stack([digit] * 4), rng=np.random.default_rng(0))
    assert 4 * 6 + 3 * 1 <= line.shape[1] <= 4 * 6 + 3 * 3  # tight crops, 2 +- 1 px gaps
    assert line.max() == 1.0 and line.shape[0] == 30


def test_compose_page_is_repeatable_per_seed():
    rows = np.random.default_rng(0).random((3, 4, 28, 28)).astype(np.float32)
    page = compose_page(rows, seed=5)
    assert np.array_equal(page, compose_page(rows, seed=5)) and page.shape[0] == 3 * 30 + 4 * 4


def test_mnist_style_fits_the_box_and_centers_the_mass():
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[20:220, 150:190] = (255, 255, 255, 255)  # a tall bar, far off-center
    image = mnist_style(drawing)
    rows, cols = np.nonzero(image > 0.1)
    assert image.shape == (28, 28) and rows.max() - rows.min() + 1 in (20, 21)
    ys, xs = np.mgrid[0:28, 0:28]
    assert abs((image * ys).sum() / image.sum() - 13.5) <= 1.0 and abs((image * xs).sum() / image.sum() - 13.5) <= 1.0


def test_mnist_style_treats_transparent_canvas_as_no_ink():
    drawing = np.zeros((100, 100, 4), np.uint8)
    drawing[..., :3] = 255  # white but fully transparent
    with pytest.raises(DrawingError, match="empty"):
        mnist_style(drawing)


def test_forged_drawings_are_refused():
    with pytest.raises(DrawingError):
        mnist_style(np.ones((5000, 10), np.float32))
    with pytest.raises(DrawingError, match="not a readable image"):
        decode_png(b"\x89PNG not really")
    buffer = io.BytesIO()
    Image.new("L", (2000, 20)).save(buffer, format="PNG")
    with pytest.raises(DrawingError, match="larger"):
        decode_png(buffer.getvalue())


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (4000, 10))
    probs = cal.softmax(logits, 2.0)
    labels = np.array([rng.choice(10, p=p) for p in probs])
    assert 1.8 < cal.fit_temperature(logits, labels) < 2.2
    assert cal.ece(cal.softmax(logits, 2.0), labels) < cal.ece(cal.softmax(logits, 1.0), labels)


def test_auroc_and_distances():
    assert cal.auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert cal.auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert cal.auroc(np.ones(5), np.ones(5)) == 0.5
    features = np.random.default_rng(1).normal(size=(200, 4))
    labels = np.arange(200) % 10
    means, precision = cal.fit_class_model(features, labels)
    assert cal.ood_score(means[3:4], means, precision)[0] == pytest.approx(0.0, abs=1e-9)
    assert cal.ood_score(means[3:4] + 50, means, precision)[0] > 10


def test_pixel_error_is_zero_inside_a_class_subspace(real):
    images, labels = real
    pixel_means, components = cal.fit_pixel_model(images, labels, k=5)
    inside = pixel_means[2] + 0.3 * components[2, 0]
    assert cal.pixel_error(inside.reshape(1, 28, 28), np.array([2]), pixel_means, components)[0] < 1e-4
    assert cal.pixel_error(blobs(1, rng=np.random.default_rng(0)), np.array([2]), pixel_means, components)[0] > 3


def test_calibration_file_round_trip_and_missing_file(tmp_path, real):
    images, labels = real
    pixel_means, components = cal.fit_pixel_model(images, labels, k=3)
    calibration = cal.Calibration(1.5, np.zeros((10, 4)), np.eye(4), pixel_means, components, (2.0, 3.0), {"a": 1})
    cal.save_calibration(tmp_path / "c.npz", calibration)
    loaded = cal.load_calibration(tmp_path / "c.npz")
    assert loaded.temperature == 1.5 and loaded.thresholds == (2.0, 3.0) and loaded.has_ood
    assert not cal.load_calibration(tmp_path / "missing.npz").has_ood
    (tmp_path / "bad.npz").write_bytes(b"junk")
    assert cal.load_calibration(tmp_path / "bad.npz").temperature == 1.0


def test_corrupt_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(np.zeros((1, 28, 28)), "melt", rng=np.random.default_rng(0))


def _stroke(width: int = 2, slant: float = 0.0, half_width: float = 0.0) -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    for y in range(4, 24):
        x = int(round(14 + slant * (14 - y)))
        image[y, max(0, x - width // 2 - int(half_width)):x + width - width // 2] = 1.0
        if half_width:
            image[y, x + int(half_width)] = 1.0
    return image


def test_properties_measure_ink_slant_and_width():
    plain, thick, leaning, wide = _stroke(2), _stroke(5), _stroke(2, slant=0.4), _stroke(2, half_width=6)
    measured = dirs.properties(np.stack([plain, thick, leaning, wide]))
    assert measured[1, 0] > measured[0, 0]  # ink
    assert measured[2, 1] > 0.3 > abs(measured[0, 1])  # slant leans right
    assert measured[3, 2] > measured[0, 2]  # width


def test_orthonormalize_and_shift_bounds():
    basis = dirs.orthonormalize(np.random.default_rng(0).normal(size=(3, 8)))
    assert np.allclose(basis @ basis.T, np.eye(3), atol=1e-9)
    directions = dirs.Directions(basis.astype(np.float32), np.ones(3))
    offset = dirs.shift(directions, {"ink": 99.0, "slant": float("nan"), "bogus": 5})
    assert np.allclose(offset, dirs.SLIDER_MAX * basis[0], atol=1e-5)


@needs_shipped
def test_shipped_directions_match_the_generator_and_move_their_property(shipped, tmp_path):
    directions = dirs.load_shipped(SHIPPED)
    assert directions is not None and directions.names == dirs.NAMES
    from aigc.engine.sampling import latents, run_generator

    z, labels = latents(64, 100, seed=3), np.arange(64, dtype=np.int32) % 10
    for k in range(3):
        low = dirs.properties(run_generator(shipped, z - 1.5 * directions.vectors[k], labels))[:, k].mean()
        high = dirs.properties(run_generator(shipped, z + 1.5 * directions.vectors[k], labels))[:, k].mean()
        assert high > low
    copy = tmp_path / "generator.keras"
    copy.write_bytes(SHIPPED.read_bytes()[:-1] + b"x")  # other weights: the shipped directions do not apply
    (tmp_path / "generator_directions.npz").write_bytes((REPO / "checkpoints" / "generator_directions.npz").read_bytes())
    assert dirs.load_shipped(copy) is None


@needs_shipped
def test_inversion_finds_a_generated_digit_again(shipped):
    from aigc.engine.sampling import run_generator
    from aigc.explore.invert import inversion_function, invert

    evaluator = metrics.load_evaluator()
    target = run_generator(shipped, np.random.default_rng(4).standard_normal((1, 100)).astype(np.float32),
                           np.array([3], np.int32))[0]
    result = invert(shipped, evaluator.model, target, 3, latent_dim=100, seed=0)
    assert result.image.shape == (28, 28) and result.z.shape == (100,)
    assert result.pixel_error < 0.01 and 0.0 <= result.image.min() and result.image.max() <= 1.0
    again = invert(shipped, evaluator.model, target, 3, latent_dim=100, seed=0)
    assert np.allclose(again.z, result.z) and inversion_function(shipped, evaluator.model, 100) is \
        inversion_function(shipped, evaluator.model, 100)  # traced once, reused


@needs_shipped
@pytest.mark.slow
def test_inverted_test_digits_keep_their_label(shipped, real):
    from aigc.explore.invert import invert
    from aigc.explore.reading import read_images

    images, labels = real
    evaluator = metrics.load_evaluator()
    results = [invert(shipped, evaluator.model, images[i], int(labels[i]), latent_dim=100) for i in range(6)]
    assert (read_images(np.stack([r.image for r in results])).labels == labels[:6]).all()
    assert np.mean([r.pixel_error for r in results]) < 0.03


@needs_shipped
def test_reading_flags_blobs_but_not_clean_digits(real):
    from aigc.explore.reading import read_images, tile_texts

    images, labels = real
    clean = read_images(images[:200], requested=labels[:200])
    assert clean.doubt.mean() < 0.06 and (clean.labels == labels[:200]).mean() > 0.97
    broken = read_images(blobs(50, rng=np.random.default_rng(0)))
    assert broken.doubt.mean() > 0.7 and broken.ood.mean() > 0.3
    texts = tile_texts(broken)
    assert all(t.endswith(("?", "!")) for t, d in zip(texts, broken.doubt) if d)


def test_labeled_grid_frames_doubtful_tiles_in_red():
    from aigc.explore.tiles import DOUBT_RGB, labeled_grid

    images = np.zeros((3, 28, 28), np.float32)
    picture = np.asarray(labeled_grid(images, ["1 99%", "2 50%?", "3 90%"], np.array([False, True, False]),
                                      ncol=3, scale=2))
    tile_w = picture.shape[1] // 3
    red = np.all(picture == DOUBT_RGB, axis=-1)
    assert red[:, tile_w:2 * tile_w].sum() > 100 and red[:, :tile_w].sum() == 0


def test_write_params_round_trip_and_refuse_forged_values():
    from aigc.explore.params import parse_write_params, write_query

    values, notices = parse_write_params({"text": "31415", "rows": "5", "seed": "9", "scale": "0.75", "slant": "1.23"})
    assert notices == [] and values["text"] == "31415" and values["rows"] == 5 and values["slant"] == 1.2
    assert parse_write_params(write_query(values)) == (values, [])
    forged = {"text": "<script>" * 50, "rows": "99", "seed": "-1", "scale": "nan", "ink": "inf", "width": "1e9"}
    values, notices = parse_write_params(forged)
    assert values["text"] == "2026" and values["rows"] == 3 and values["seed"] == 0 and values["scale"] == 1.0
    assert values["ink"] == 0.0 and values["width"] == 0.0 and len(notices) == 6
    assert all(len(notice) < 140 for notice in notices)
    values, notices = parse_write_params({"seed": "0" * 30 + "7"})  # refused whole, never cut to 24 zeros
    assert values["seed"] == 0 and len(notices) == 1 and notices[0].startswith("seed")


def test_query_params_good_values():
    values, notices = params.parse_generate_params({"digit": "7", "n": "25", "seed": "42"})
    assert values == {"digit": 7, "n": 25, "seed": 42} and notices == []
    assert params.parse_generate_params({"digit": "any"})[0]["digit"] is None


@pytest.mark.parametrize("query, key", [
    ({"digit": "11"}, "digit"), ({"digit": "seven"}, "digit"), ({"n": "0"}, "n"), ({"n": "1000000"}, "n"),
    ({"n": "1.5"}, "n"), ({"seed": "text"}, "seed"), ({"seed": "-3"}, "seed"), ({"seed": "9" * 40}, "seed"),
    ({"seed": "0" * 30 + "7"}, "seed"),  # refused whole, not cut to its first 24 characters
])
def test_query_params_bad_values_fall_back_with_notice(query, key):
    values, notices = params.parse_generate_params(query)
    assert values == {"digit": None, "n": params.N_DEFAULT, "seed": params.SEED_DEFAULT}
    assert len(notices) == 1 and notices[0].startswith(key)
    assert len(notices[0]) < 200  # a long value is shortened in the message


def test_bounded_generate_inputs_clamps_everything():
    out = params.bounded_generate_inputs(n=10**6, seed=-5, truncation=float("nan"), steps=0)
    assert out == {"n": params.N_MAX, "seed": 0, "truncation": params.SCALE_DEFAULT, "steps": params.STEPS_MIN}
    assert params.bounded_generate_inputs(n="x", seed=None, truncation=9, steps=99)["truncation"] == params.SCALE_MAX


@needs_shipped
def test_write_number_reads_as_typed_in_one_hand_per_row(shipped):
    from aigc.explore.layout import write_number
    from aigc.explore.reading import read_images

    images, page = write_number(shipped, "2026", latent_dim=100, rows=2, seed=1)
    assert images.shape == (2, 4, 28, 28) and page.ndim == 2 and page.shape[1] < 4 * 28 + 20
    assert (read_images(images.reshape(-1, 28, 28)).labels == [2, 0, 2, 6] * 2).mean() >= 7 / 8
    # Same hand, same digit -> the same image, up to the kernels' float rounding: rows of one batch differ by
    # ~6e-7 on CPUs without AVX-512 (oneDNN blocks the batch), pixels are in [0, 1].
    np.testing.assert_allclose(images[:, 0], images[:, 2], atol=1e-5, rtol=0)
    pinned, _ = write_number(shipped, "2026", latent_dim=100, rows=2, seed=1, first_style=np.zeros(100, np.float32))
    np.testing.assert_allclose(pinned[1], images[1], atol=1e-5, rtol=0)
    assert np.abs(pinned[0] - images[0]).max() > 0.1  # the pinned hand is another hand


def test_tile_centers_land_on_the_tiles_of_a_grid_picture():
    from aigc.engine.sampling import grid
    from aigc.explore.pin import tile_centers

    images = np.zeros((7, 28, 28), np.float32)
    images[:, 14, 14] = 1.0  # one lit pixel in the middle of each tile
    for scale in (1, 3, 4):
        picture = np.asarray(grid(images, 3, scale=scale))
        x, y, side = tile_centers(picture.shape[1], picture.shape[0], n=7, columns=3)
        assert side == 28 * scale and len(x) == 7
        assert all(picture[int(b), int(a)] == 255 for a, b in zip(x, y)), scale


def test_a_walk_from_a_pinned_latent_starts_on_its_tile_and_ends_on_the_partner():
    from aigc.engine.models import build_generator
    from aigc.engine.sampling import latents, run_generator
    from aigc.engine.spec import ModelConfig
    from aigc.explore.pin import tile_latents, walk_from

    generator = build_generator(ModelConfig(base_filters=8))
    z, labels = tile_latents(100, n=4, digit=None, seed=5, truncation=1.0, shift=np.full(100, 0.5, np.float32))
    assert np.allclose(z, latents(4, 100, seed=5) + 0.5) and labels.shape == (4,)
    partner = latents(1, 100, seed=2)[0]
    frames = walk_from(generator, z[1], int(labels[1]), partner, 7, steps=5)
    assert frames.shape == (5, 28, 28)
    assert np.allclose(frames[0], run_generator(generator, z[1:2], labels[1:2])[0], atol=1e-5)
    assert np.allclose(frames[-1], run_generator(generator, partner[None], np.array([7]))[0], atol=1e-5)
