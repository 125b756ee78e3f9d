"""Measurements for docs/explore.md, and the shipped artefacts: `python -m aigc.explore.measure WHAT --data mnist.npz`.

WHAT: calibrate (fits and writes checkpoints/evaluator_calibration.npz), ood, directions (writes
checkpoints/generator_directions.npz), write, invert. Each prints a Markdown table.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from aigc import settings
from aigc.explore import calibration as cal
from aigc.explore import directions as dirs
from aigc.explore.corrupt import KINDS, corrupt
from aigc.explore.invert import invert
from aigc.explore.layout import number_digits, style_latents
from aigc.explore.reading import features_and_logits, read_images


def _test_set(path: str):
    from aigc.engine.data import load_mnist

    _x_train, _y_train, x_test, y_test = load_mnist(path)
    return x_test.astype(np.float32) / 255.0, y_test.astype(np.int64)


def _generator():
    """(the shipped generator, its latent size)."""
    from aigc.engine.checkpoints import load_generator

    model, config, _card = load_generator(settings.shipped_generator())
    return model, config.latent_dim


def calibrate(args) -> None:
    """Fit T and the class model on the first half of MNIST test, report ECE on the second half, write the npz."""
    x, y = _test_set(args.data)
    half = len(x) // 2
    features, logits = features_and_logits(x)
    temperature = cal.fit_temperature(logits[:half], y[:half])
    means, precision = cal.fit_class_model(features[:half], y[:half])
    pixel_means, components = cal.fit_pixel_model(x[:half], y[:half])
    thresholds = (float(np.quantile(cal.ood_score(features[:half], means, precision), cal.OOD_QUANTILE)),
                  float(np.quantile(cal.pixel_error(x[:half], y[:half], pixel_means, components), cal.OOD_QUANTILE)))
    before = cal.ece(cal.softmax(logits[half:]), y[half:])
    after = cal.ece(cal.softmax(logits[half:], temperature), y[half:])
    info = {"fit_on": f"MNIST test[:{half}]", "ece_before": before, "ece_after": after,
            "nll_before": cal.nll(logits[half:], y[half:], 1.0), "nll_after": cal.nll(logits[half:], y[half:], temperature),
            "ood_quantile": cal.OOD_QUANTILE}
    cal.save_calibration(args.out or settings.calibration_path(),
                         cal.Calibration(temperature, means, precision, pixel_means, components, thresholds, info))
    print(f"| temperature | ECE before | ECE after | NLL before | NLL after | OOD thresholds |\n|---|---|---|---|---|---|\n"
          f"| {temperature:.3f} | {before:.4f} | {after:.4f} | {info['nll_before']:.4f} | {info['nll_after']:.4f} "
          f"| {thresholds[0]:.2f}, {thresholds[1]:.2f} |  (evaluated on MNIST test[{half}:])")


def ood(args) -> None:
    """AUROC of the OOD distance and of low calibrated confidence, clean MNIST test[5000:] vs each corruption."""
    x, y = _test_set(args.data)
    clean = x[len(x) // 2:][:args.n]
    calibration = cal.load_calibration()
    base = read_images(clean, calibration=calibration)
    print("| corruption | AUROC (OOD score) | AUROC (1 - confidence) | flagged (OOD) | flagged (doubt) |\n|---|---|---|---|---|")
    print(f"| none (clean) | - | - | {base.ood.mean():.1%} | {base.doubt.mean():.1%} |")
    rng = np.random.default_rng(0)
    for kind in KINDS:
        reading = read_images(corrupt(clean, kind, rng=rng), calibration=calibration)
        print(f"| {kind} | {cal.auroc(base.score, reading.score):.3f} | "
              f"{cal.auroc(-base.confidence, -reading.confidence):.3f} | {reading.ood.mean():.1%} | {reading.doubt.mean():.1%} |")
    generator, _latent_dim = _generator()
    from aigc.engine.sampling import generate

    for scale in (1.0, 2.0):
        images, labels = generate(generator, 1000, None, seed=0, truncation=scale)
        reading = read_images(images, requested=labels, calibration=calibration)
        print(f"| generator, scale {scale} (1000 samples) | - | - | {reading.ood.mean():.1%} | {reading.doubt.mean():.1%} |")
    images, labels = generate(generator, 16, 8, seed=0, truncation=2.0)
    reading = read_images(images, requested=8, calibration=calibration)
    print(f"\n?digit=8&n=16&seed=0 at scale 2.0: {int(reading.ood.sum())}/16 OOD, {int(reading.doubt.sum())}/16 doubted, "
          f"calibrated mean confidence {reading.confidence.mean():.0%}")


def directions(args) -> None:
    """Fit and write the shipped generator's directions; per slider value: mean properties and label kept."""
    generator, latent_dim = _generator()
    fitted = dirs.fit_directions(generator, latent_dim)
    if args.write:
        path = settings.shipped_generator()
        dirs.save_directions(path.with_name(path.stem + dirs.SUFFIX), fitted, generator_sha256=dirs.file_digest(path))
    from aigc.engine.sampling import latents, run_generator

    z = latents(args.n, latent_dim, seed=11)
    labels = np.random.default_rng(12).integers(0, 10, args.n).astype(np.int32)
    values = np.linspace(dirs.SLIDER_MIN, dirs.SLIDER_MAX, 9)
    print("| direction | property | " + " | ".join(f"{v:+.1f}" for v in values) + " | monotonic | label kept (min) |")
    print("|---" * (len(values) + 4) + "|")
    for k, name in enumerate(fitted.names):
        means, kept = [], []
        for value in values:
            images = run_generator(generator, z + value * fitted.vectors[k], labels)
            means.append(dirs.properties(images)[:, k].mean())
            kept.append((read_images(images).labels == labels).mean())
        monotonic = bool(np.all(np.diff(means) > 0))
        print(f"| {name} | {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {monotonic} | {min(kept):.1%} |")


def write(args) -> None:
    """Share of typed digits read as typed, and style consistency of evaluator features (same row vs across rows)."""
    generator, latent_dim = _generator()
    digits = "0123456789"
    rows = []
    for seed in range(args.n // 80):
        styles = style_latents(8, latent_dim, seed=seed)
        rows.append(number_digits(generator, digits, styles))
    images = np.concatenate(rows)  # (styles, 10, 28, 28)
    n_styles = len(images)
    labels = np.tile(np.arange(10), n_styles)
    reading = read_images(images.reshape(-1, 28, 28), requested=labels)
    features, _logits = features_and_logits(images.reshape(-1, 28, 28))
    features = features.reshape(n_styles, 10, -1)
    residual = features - features.mean(axis=0, keepdims=True)  # remove what each digit shares across styles
    same, across, matched = _style_distances(residual)
    props = dirs.properties(images.reshape(-1, 28, 28)).reshape(n_styles, 10, -1)
    props = props - props.mean(axis=0, keepdims=True)
    explained = 1 - props.var(axis=1).mean(axis=0) / props.reshape(-1, props.shape[-1]).var(axis=0)
    print(f"| digits | read as typed | doubted | same-style distance | cross-style distance | ratio | "
          f"nearest other digit is the same style | style's share of ink / slant / width variance |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {len(labels)} ({n_styles} styles x 0-9) | {(reading.labels == labels).mean():.2%} | {reading.doubt.mean():.1%} "
          f"| {same:.2f} | {across:.2f} | {same / across:.2f} | {matched:.1%} (chance {1 / n_styles:.1%}) | "
          + " / ".join(f"{e:.0%}" for e in explained) + " |")


def _style_distances(residual: np.ndarray) -> tuple[float, float, float]:
    """Residual features (styles, 10, D), pairs of different digits: mean distance same style, across styles, and
    how often a digit's nearest other-digit neighbour among all styles is its own style."""
    n_styles = len(residual)
    same, across, matched = [], [], []
    for a in range(10):
        for b in range(a + 1, 10):
            d = np.linalg.norm(residual[:, a, None] - residual[None, :, b], axis=-1)  # (styles, styles)
            same.append(np.diag(d).mean())
            across.append(d[~np.eye(n_styles, dtype=bool)].mean())
            matched.append((d.argmin(axis=1) == np.arange(n_styles)).mean())
    return float(np.mean(same)), float(np.mean(across)), float(np.mean(matched))


def inversion(args) -> None:
    """Invert held-out MNIST test digits: evaluator agreement with the true label, pixel MSE, seconds per inversion."""
    from aigc.quality import metrics

    x, y = _test_set(args.data)
    pick = np.random.default_rng(3).choice(len(x), args.n, replace=False)
    (generator, latent_dim), evaluator = _generator(), metrics.load_evaluator()
    invert(generator, evaluator.model, x[pick[0]], int(y[pick[0]]), latent_dim=latent_dim)  # trace once, not timed
    results = [invert(generator, evaluator.model, x[i], int(y[i]), latent_dim=latent_dim, seed=int(i)) for i in pick]
    reading = read_images(np.stack([r.image for r in results]))
    seconds = np.array([r.seconds for r in results])
    errors = np.array([r.pixel_error for r in results])
    print(f"| test digits | read as the input's label | pixel MSE (mean) | median s | p95 s |\n|---|---|---|---|---|\n"
          f"| {args.n} | {(reading.labels == y[pick]).mean():.1%} | {errors.mean():.4f} | "
          f"{np.median(seconds):.2f} | {np.percentile(seconds, 95):.2f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["calibrate", "ood", "directions", "write", "invert"])
    parser.add_argument("--data", default=None, help="MNIST .npz (Keras layout); default: $AIGC_MNIST")
    parser.add_argument("--n", type=int, default=400, help="how many digits to measure")
    parser.add_argument("--out", default=None, help="calibrate: where to write (default: checkpoints/)")
    parser.add_argument("--write", action="store_true", help="directions: write checkpoints/generator_directions.npz")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    {"calibrate": calibrate, "ood": ood, "directions": directions, "write": write, "invert": inversion}[args.what](args)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
