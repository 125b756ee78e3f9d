"""`python -m aigc bench`: the project's trainer and sampler beside the TF DCGAN tutorial, in one run.

Absolute times on shared 2-core machines are noisy, so every comparison is interleaved
(A, B, B, A, ...) inside one process and reported as a ratio. No section is a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from aigc import settings
from aigc.bench.flops import flops
from aigc.bench.report import render
from aigc.cli import bounded_int, positive_float

SECTIONS = ("throughput", "quality", "latency", "flops")
# Per mode: interleaved rounds, steps per timed window, time-to-quality budget and interval (s), eval samples, repeats.
MODES = {
    "full": dict(rounds=6, steps=20, budget_s=600.0, interval_s=60.0, eval_n=2000, repeats=50),
    "quick": dict(rounds=4, steps=10, budget_s=120.0, interval_s=30.0, eval_n=1000, repeats=30),
    "tiny": dict(rounds=1, steps=2, budget_s=2.0, interval_s=1.0, eval_n=100, repeats=3),
}
VARIANTS = {  # name -> (batch, precision, jit): opt-in settings of the default trainer measured by --variants
    "default b256 jit": (256, "float32", True),
    "default b256 bf16": (256, "mixed_bfloat16", False),
    "default b256 bf16+jit": (256, "mixed_bfloat16", True),
    "default b128": (128, "float32", False),
    "default b512": (512, "float32", False),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="MNIST .npz (default: $AIGC_MNIST, else Keras; synthetic if none)")
    parser.add_argument("--quick", action="store_true", help="short windows and a 2-minute quality budget")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run on synthetic data (tests)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--browser", action="store_true", help="also time the Streamlit app in Chromium (slow)")
    parser.add_argument("--variants", action="store_true", help="also measure XLA, bf16 and batch sizes of the trainer")
    parser.add_argument("--quality-bf16", action="store_true", help="time to quality also for the default in bf16")
    parser.add_argument("--batch-size", type=bounded_int(2, 8192), default=256, help="batch of the throughput comparison")
    parser.add_argument("--budget", type=positive_float(86_400), default=None, help="time-to-quality seconds per contender")
    parser.add_argument("--reference-budget", type=positive_float(86_400), default=None,
                        help="time-to-quality seconds for the tutorial (default: --budget); it trains on alone after")
    parser.add_argument("--threads", type=bounded_int(0, 1024), default=0, help="TensorFlow intra-op threads (0 = default)")
    parser.add_argument("--checkpoint", default=None, help="generator for latency (default: shipped, else fresh)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON ('-' = stdout)")
    parser.add_argument("--crowd", type=bounded_int(1, 500), default=None, metavar="N",
                        help="only the crowd bench: N concurrent sessions on `streamlit run app.py` (hosted, loopback)")
    parser.add_argument("--clicks", type=bounded_int(1, 1000), default=5, help="--crowd: New seed presses per session")
    parser.add_argument("--think", type=positive_float(600), default=2.0, help="--crowd: mean think time (s)")


def main(args: argparse.Namespace) -> int:
    if args.crowd:
        return crowd_main(args)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if args.json and args.json != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"error: --json: folder does not exist: {os.path.dirname(args.json)}", file=sys.stderr)
        return 2
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    settings = dict(MODES[mode], batch=args.batch_size)
    if args.budget:
        settings.update(budget_s=args.budget, interval_s=args.budget / 4)
    settings["reference_budget_s"] = args.reference_budget or settings["budget_s"]
    _configure(args.threads)
    results = {"machine": machine(), "mode": mode, "settings": settings, "started_at": time.time()}
    try:
        x, y, source = _data(args)
        if "latency" in sections:
            _serving_generator(args.checkpoint)  # a bad --checkpoint fails now, not after minutes of training
    except Exception as error:  # DataError / CheckpointError: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    results["data"] = source
    steps = [("throughput", lambda: throughput(x, y, variants=args.variants, **settings)),
             ("flops", lambda: flops(results.get("throughput"), tiny=args.tiny)),
             ("latency", lambda: latency(checkpoint=args.checkpoint, repeats=settings["repeats"])),
             ("quality", lambda: time_to_quality(x, y, synthetic=source == "synthetic", bf16=args.quality_bf16,
                                                  **settings))]
    for name, run in steps:
        if name in sections:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            results[name] = run()
    if args.browser:
        from aigc.bench.browser import browser

        print("[bench] browser ...", file=sys.stderr, flush=True)
        results["browser"] = browser(repeats=5 if args.tiny else 20 if args.quick else 40, data=args.data)
    print(render(results))
    if args.json:
        text = json.dumps(results, indent=1, default=float)
        sys.stdout.write(text + "\n") if args.json == "-" else open(args.json, "w").write(text + "\n")
    return 0


def crowd_main(args: argparse.Namespace) -> int:
    """--crowd N: the crowd benchmark alone (it starts its own server); prints the figures, optionally JSON."""
    from aigc.bench.crowd import crowd, render as render_crowd

    result = crowd(sessions=args.crowd, clicks=args.clicks, think_s=args.think)
    print(render_crowd(result))
    if args.json:
        text = json.dumps(result, indent=1, default=float)
        sys.stdout.write(text + "\n") if args.json == "-" else open(args.json, "w").write(text + "\n")
    return 0


def _configure(threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _data(args):
    """(x_train uint8 (N, 28, 28), y_train (N,), source): real MNIST when available, else synthetic."""
    from aigc.engine.data import DataError, load_mnist, synthetic_mnist

    if not args.tiny:
        try:
            x, y, _xt, _yt = load_mnist(args.data)
            return x, y, args.data or settings.env(settings.MNIST_ENV) or "keras"
        except DataError as error:
            if args.data:
                raise  # an explicit path that is not MNIST is an error, not a fallback
            print(f"note: {error}\nnote: using synthetic data; the quality section is skipped.", file=sys.stderr)
    fake = synthetic_mnist(1024, 16)
    return fake["x_train"], fake["y_train"], "synthetic"


def machine() -> dict:
    """CPU model, cores, flags that matter, TF version, GPUs."""
    import tensorflow as tf

    flags, model = set(), platform.processor()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "tensorflow": tf.__version__, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


# ---- training throughput -------------------------------------------------------------------------------------

def default_gan(*, batch: int, precision: str = "float32", jit: bool = False, seed: int = 0):
    """aigc.engine.gan.GAN with the dcgan preset's default hyperparameters, built under `precision`."""
    import keras

    from aigc.engine.gan import GAN
    from aigc.engine.spec import ModelConfig, RunSpec

    cfg = RunSpec.resolve(preset="dcgan", batch_size=batch)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(precision)
    try:
        return GAN(ModelConfig(), lr_g=cfg.lr_g, lr_d=cfg.lr_d, beta_1=cfg.beta_1, ema_decay=cfg.ema_decay,
                   loss=cfg.loss, label_smoothing=cfg.label_smoothing, global_batch=batch, seed=seed, jit=jit)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def default_runner(x, y, *, batch: int, precision: str = "float32", jit: bool = False):
    """(gan, run(steps)): the project's pipeline and train step, synced every step like aigc.engine.trainer."""
    from aigc.engine.data import make_dataset

    gan = default_gan(batch=batch, precision=precision, jit=jit)
    batches = iter(make_dataset(x, y, batch_size=batch, epoch_seed=0).repeat())

    def run(steps: int) -> None:
        for _ in range(steps):
            real_images, labels = next(batches)
            {k: float(v) for k, v in gan.train_step(real_images, labels).items()}
    return gan, run


def reference_runner(x, *, batch: int):
    """(reference GAN, run(steps)): the tutorial's pipeline and train step."""
    from aigc.bench.reference import ReferenceGAN, make_dataset

    reference = ReferenceGAN(batch_size=batch)
    batches = iter(make_dataset(x, batch_size=batch).repeat())

    def run(steps: int) -> None:
        for _ in range(steps):
            gen_loss, _disc_loss = reference.train_step(next(batches))
            float(gen_loss)
    return reference, run


def interleave(runners: dict, *, rounds: int, steps: int) -> dict:
    """{name: [img/s per window]}: every runner warmed up, then timed in alternating order each round."""
    for run, _batch in runners.values():
        run(2)  # trace and warm caches outside the timed windows
    rates = {name: [] for name in runners}
    names = list(runners)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            run, batch = runners[name]
            start = time.perf_counter()
            run(steps)
            rates[name].append(steps * batch / (time.perf_counter() - start))
        print(f"[bench]   round {index + 1}/{rounds}: " + ", ".join(f"{k.split(' (')[0]} {v[-1]:.0f}"
                                                               for k, v in rates.items()), file=sys.stderr, flush=True)
    return rates


def throughput(x, y, *, batch: int, rounds: int, steps: int, variants: bool = False, **_) -> dict:
    """Images/s of the default trainer and the tutorial at `batch`, and ratios from interleaved rounds."""
    runners = {"default (aigc.engine.gan.GAN, dcgan)": (default_runner(x, y, batch=batch)[1], batch),
               "reference (TF DCGAN tutorial)": (reference_runner(x, batch=batch)[1], batch)}
    if variants:
        for name, (variant_batch, precision, jit) in VARIANTS.items():
            runners[name] = (default_runner(x, y, batch=variant_batch, precision=precision, jit=jit)[1], variant_batch)
    rates = interleave(runners, rounds=rounds, steps=steps)
    reference = rates["reference (TF DCGAN tutorial)"]
    rows = []
    for name, values in rates.items():
        ratios = [a / b for a, b in zip(values, reference)]  # same round: same background load
        rows.append({"name": name, "batch": runners[name][1], "img_per_s": float(np.median(values)),
                     "min": float(np.min(values)), "max": float(np.max(values)),
                     "ratio_vs_reference": float(np.median(ratios)), "ratios": [round(r, 3) for r in ratios],
                     "epoch_s": 60_000 / float(np.median(values))})
    return {"rows": rows, "rounds": rounds, "steps_per_window": steps}


# ---- generation latency ---------------------------------------------------------------------------------------

def _serving_generator(checkpoint: str | None):
    from aigc.engine.checkpoints import load_generator
    from aigc.engine.spec import ModelConfig
    from aigc.engine.models import build_generator

    shipped = settings.shipped_generator()
    path = checkpoint or (shipped if shipped.exists() else None)
    if path:
        generator, config, _card = load_generator(path)
        return generator, config, str(path)
    return build_generator(ModelConfig()), ModelConfig(), "untrained dcgan generator (same compute)"


def latency(*, checkpoint: str | None, repeats: int, sizes=(1, 64, 100)) -> dict:
    """Median and p95 ms per request: aigc.engine.sampling.generate vs calling the Keras model vs predict."""
    from aigc.engine import sampling
    from aigc.bench.reference import make_generator_model

    generator, config, source = _serving_generator(checkpoint)
    reference = make_generator_model()
    rows = []
    for n in sizes:
        z = sampling.latents(n, config.latent_dim, seed=n)
        labels = sampling.digit_labels(n, None, seed=n)
        inputs = [z, labels] if config.conditional else z
        ref_z = sampling.latents(n, 100, seed=n)
        # predict and the eager call are measured only as the baselines the served path is compared with.
        methods = {
            "aigc.engine.sampling.generate": lambda: sampling.generate(generator, n, seed=n, config=config),
            "model(z) eager": lambda: np.asarray(generator(inputs, training=False)),
            "model.predict": lambda: generator.predict(inputs, batch_size=n, verbose=0),
            "reference run_generator": lambda: sampling.run_generator(reference, ref_z, None),
            "reference model(z) eager": lambda: np.asarray(reference(ref_z, training=False)),
            "reference predict": lambda: reference.predict(ref_z, batch_size=n, verbose=0),
        }
        times = {name: [] for name in methods}
        for method in methods.values():
            method()  # first call traces; it is cold start, not latency
        for index in range(repeats):
            for name, method in (methods.items() if index % 2 == 0 else reversed(methods.items())):
                start = time.perf_counter()
                method()
                times[name].append((time.perf_counter() - start) * 1e3)
        for name, values in times.items():
            rows.append({"n": n, "method": name, "median_ms": float(np.median(values)),
                         "p95_ms": float(np.percentile(values, 95))})
    return {"generator": source, "repeats": repeats, "rows": rows}


# ---- time to quality -----------------------------------------------------------------------------------------

def _evaluate(generator, config, *, n: int) -> dict:
    from aigc.quality import metrics

    result = metrics.evaluate_generator(generator, config, n=n, seed=0, batch_size=500)
    # The histogram stands in for class accuracy where the generator is unconditional (the reference).
    return dict(metrics.summary(result), class_histogram=[int(c) for c in result.get("class_histogram", [])])


def time_to_quality(x, y, *, budget_s: float, interval_s: float, eval_n: int, synthetic: bool = False,
                    bf16: bool = False, reference_budget_s: float | None = None, **_) -> dict:
    """Train the default (its batch 128, EMA served) and the tutorial (256) in alternating slices; evaluate each slice.

    The tutorial may get a longer budget (`reference_budget_s`): it then trains on alone after the others stop.
    """
    from aigc.quality import metrics
    from aigc.engine.spec import ModelConfig, RunSpec

    if synthetic or not metrics.evaluator_available():
        return {"skipped": "needs real MNIST and the shipped evaluator (python -m aigc eval --train-evaluator)"}
    default_batch = RunSpec.resolve().batch_size
    gan, run_default = default_runner(x, y, batch=default_batch)
    reference, run_reference = reference_runner(x, batch=256)
    contenders = {  # name: (run, batch, [(generator, config, label)])
        "default": (run_default, default_batch, [(gan.serving_generator, gan.config, "default (EMA, served)"),
                                                 (gan.generator, gan.config, "default (raw generator)")]),
        "reference": (run_reference, 256, [(reference.generator, ModelConfig(preset="seed"), "reference")]),
    }
    if bf16:
        fast, run_fast = default_runner(x, y, batch=default_batch, precision="mixed_bfloat16")
        contenders["default bf16"] = (run_fast, default_batch, [
            (fast.serving_generator, fast.config, "default bf16 (EMA, served)"),
            (fast.generator, fast.config, "default bf16 (raw generator)")])
    curves = {label: [] for *_r, outputs in contenders.values() for _g, _c, label in outputs}
    trained = {name: 0.0 for name in contenders}
    steps = {name: 1 for name in contenders}
    budgets = {name: (reference_budget_s or budget_s) if name == "reference" else budget_s for name in contenders}
    for run, *_rest in contenders.values():
        run(1)  # the first step traces the train step: one-off start-up cost, kept off the clock
    while any(trained[name] < budgets[name] - 1e-6 for name in contenders):
        for name, (run, batch, outputs) in contenders.items():
            if trained[name] >= budgets[name] - 1e-6:
                continue
            start = time.perf_counter()
            while time.perf_counter() - start < interval_s:
                run(1)
                steps[name] += 1
            trained[name] += time.perf_counter() - start  # evaluation time is not training time
            for generator, config, label in outputs:
                point = {"train_s": round(trained[name], 1), "epochs": round(steps[name] * batch / len(x), 3)}
                curves[label].append(dict(point, **_evaluate(generator, config, n=eval_n)))
    return {"budget_s": budget_s, "reference_budget_s": budgets["reference"], "interval_s": interval_s,
            "eval_n": eval_n, "curves": curves,
            "default_matches_reference_at_s": _match_time(curves)}


def _match_time(curves: dict) -> dict:
    """Training seconds at which each default curve first reaches the reference's best FDD (lower is better).

    Best rather than final: a GAN's curve is not monotone, and the best point is the harder bar.
    """
    scores = [p["fdd"] for p in curves["reference"] if p.get("fdd") is not None]
    out = {"reference_best_fdd": min(scores) if scores else None}
    for label, points in curves.items():
        if label != "reference" and scores:
            hits = [p["train_s"] for p in points if p.get("fdd") is not None and p["fdd"] <= min(scores)]
            out[label] = hits[0] if hits else None
    return out
