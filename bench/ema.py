"""Several EMAs of one training run, side by side: `python -m aigc bench --ema 10,20,10:0.998 --epochs 8`.

The served generator is an exponential moving average (EMA) of G's weights, and it never feeds back into
training. So one run can carry several EMAs, each updated after every step by the trainer's own rule (at step t the
decay is min(cap, (1 + t) / (N + t)), N the warm-up), and evaluate each at the same steps: a comparison of EMA
lengths free of the noise between training runs (on the CPU, two runs of one seed differ by up to FDD 0.9 after
one epoch).
"""
from __future__ import annotations

import argparse
import sys

from bench.scratch import EPOCH_IMAGES, quality_of

NO_EMA = "the recipe has no EMA (ema_decay 0): there is nothing to compare"
AT_EPOCHS = (1, 2, 4, 8, 16, 32)  # evaluation points within the run (and always its end)


def parse_variants(text: str) -> list[tuple[float, float]]:
    """'10,20:0.998' -> [(10.0, 0.999), (20.0, 0.998)]: warm-up N and decay cap (default: the recipe's), checked
    against the run spec's limits for ema_warmup and ema_decay."""
    from aigc.engine.spec import SETTINGS, SpecError

    variants = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        warmup, _sep, cap = item.partition(":")
        try:
            variants.append((SETTINGS["ema_warmup"].parse(warmup),
                             SETTINGS["ema_decay"].parse(cap) if cap else SETTINGS["ema_decay"].default_for("dcgan")))
        except SpecError as error:
            raise argparse.ArgumentTypeError(f"{item!r}: {error}") from None
        if variants[-1][1] <= 0:
            raise argparse.ArgumentTypeError(f"{item!r}: the decay cap must be above 0 (0 means no EMA)")
    if not variants:
        raise argparse.ArgumentTypeError("expected warm-ups N[:CAP], comma-separated, e.g. 10,20:0.998")
    return variants


def paired_ema(x, y, *, variants, seed: int, at_images, eval_n: int, recipe: dict | None = None, evaluate=None,
               runner=None) -> dict:
    """{"rows": one per evaluation point, {"images", "epochs", "variants": {"N10/0.999": metrics}}, ...}.

    Trains the recipe (with its own EMA) for max(at_images) images, one step per call, and after every step updates
    one extra copy of G's weights per (warm-up, cap). At each point in at_images each copy is swapped into the
    served generator for evaluate(gan) (default: the evaluator on eval_n samples, eval seed 0), then the run's own
    EMA is put back.
    """
    import tensorflow as tf

    from aigc.engine.gan import pick_precision
    from aigc.engine.spec import RunSpec
    from bench.runners import default_runner

    spec = RunSpec.resolve(**(recipe or {}))
    if not spec.ema_decay:
        raise ValueError(NO_EMA)
    gan, run = (runner or default_runner)(x, y, batch=spec.batch_size, precision=pick_precision(spec.precision),
                                          seed=seed, spec=spec)
    evaluate = evaluate or (lambda model: _evaluate(model, eval_n))
    served, source = gan.ema_generator.weights, gan.generator.weights
    copies = [[tf.Variable(weight) for weight in source] for _ in variants]

    @tf.function
    def update():
        steps = tf.cast(gan.g_optimizer.iterations, tf.float32)
        for (warmup, cap), copy in zip(variants, copies):
            decay = tf.minimum(cap, (1.0 + steps) / (warmup + steps))
            for average, weight in zip(copy, source):
                average.assign(decay * average + (1.0 - decay) * tf.cast(weight, average.dtype))

    points = sorted({-(-images // spec.batch_size) for images in at_images})  # in steps, rounded up
    rows = []
    for step in range(1, points[-1] + 1):
        run(1)
        update()
        if step in points:
            own = [weight.numpy() for weight in served]
            results = {}
            for (warmup, cap), copy in zip(variants, copies):
                for target, average in zip(served, copy):
                    target.assign(average)
                results[_name(warmup, cap)] = evaluate(gan)
            for target, value in zip(served, own):
                target.assign(value)
            images = step * spec.batch_size
            rows.append({"images": images, "epochs": round(images / EPOCH_IMAGES, 3), "variants": results})
            print(f"[bench]   {images / 1000:.0f}k images: " + "; ".join(
                f"{name} FDD {m.get('fdd')}" for name, m in results.items()), file=sys.stderr, flush=True)
    return {"seed": seed, "eval_n": eval_n, "recipe": recipe or {}, "rows": rows,
            "variants": [_name(warmup, cap) for warmup, cap in variants]}


def _name(warmup: float, cap: float) -> str:
    return f"N{warmup:g}/{cap:g}"


def _evaluate(gan, n: int) -> dict:
    result = quality_of(gan.serving_generator, gan.config, n)
    return {k: result[k] for k in ("fdd", "class_accuracy", "precision", "recall")}


def render(result: dict) -> str:
    """Markdown: one row per EMA, FDD per evaluation point, then precision / recall / class accuracy at the end."""
    if "skipped" in result:
        return f"## Paired EMAs\nskipped: {result['skipped']}"
    points, last = result["rows"], result["rows"][-1]
    head = " / ".join(f"{p['epochs']:g}" for p in points)
    lines = [f"## Paired EMAs of one run (training seed {result['seed']}, {result['eval_n']} samples per evaluation)",
             f"| EMA (warm-up N / cap) | FDD at epochs {head} | precision / recall at the end | class accuracy at the end |",
             "| --- | --- | --- | --- |"]
    for name in result["variants"]:
        fdd = " / ".join(_figure(p["variants"][name].get("fdd")) for p in points)
        end = last["variants"][name]
        lines.append(f"| {name} | {fdd} | {_figure(end.get('precision'), 3)} / {_figure(end.get('recall'), 3)} "
                     f"| {_figure(end.get('class_accuracy'), 4)} |")
    return "\n".join(lines)


def _figure(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def at_images(epochs: int) -> list[int]:
    """Evaluation points of an `epochs`-long comparison: the AT_EPOCHS within it, and its end."""
    return [e * EPOCH_IMAGES for e in sorted({*(e for e in AT_EPOCHS if e < epochs), epochs})]


def ema_main(args: argparse.Namespace) -> int:
    """`bench --ema VARIANTS [--epochs E] [--seeds S] [--set K=V] [--json PATH]`: training seeds 0..S-1."""
    from aigc.engine.spec import RunSpec, SpecError
    from aigc.quality import metrics
    from bench.common import configure, json_path_error, load_data, machine, write_json

    if json_path_error(args.json):
        print(json_path_error(args.json), file=sys.stderr)
        return 2
    recipe = dict(args.set)
    try:
        if not RunSpec.resolve(**recipe).ema_decay:
            raise SpecError(NO_EMA)
    except SpecError as error:
        print(f"error: --set: {error}", file=sys.stderr)
        return 2
    configure(args.threads)
    try:
        x, y, source = load_data(args)
    except Exception as error:  # DataError: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = {"machine": machine(), "data": source, "runs": []}
    if source == "synthetic" or not metrics.evaluator_available():
        results["skipped"] = "needs real MNIST and the shipped evaluator (python -m aigc eval --train-evaluator)"
        print(render(results))
    else:
        for seed in range(args.seeds or 1):
            run = paired_ema(x, y, variants=args.ema, seed=seed, at_images=at_images(args.epochs), eval_n=10_000,
                             recipe=recipe)
            results["runs"].append(run)
            print(render(run), flush=True)
    write_json(args.json, results)
    return 0
