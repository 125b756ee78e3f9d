"""`python -m aigc bench`: the project's trainer and sampler beside the TF DCGAN tutorial, in one run.

Absolute times on shared 2-core machines are noisy, so every comparison is interleaved
(A, B, B, A, ...) inside one process and reported as a ratio. No section is a test.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from aigc import settings
from bench.common import configure, json_path_error, load_data, machine, write_json
from bench.ema import ema_main, parse_variants
from bench.flops import flops
from bench.report import render
from bench.runners import default_runner, reference_runner
from bench.scratch import from_scratch
from aigc.cli.args import bounded_int, positive_float
from aigc.engine.spec import SETTINGS, RunSpec, SpecError

SECTIONS = ("throughput", "scratch", "latency", "flops")
# Per mode: interleaved rounds and steps per timed window (throughput), seeds, images between evaluations and
# samples per evaluation inside the first epoch and at epoch ends (from scratch), repeats (latency).
MODES = {
    "full": dict(rounds=6, steps=40, seeds=3, every=6000, eval_n=2000, epoch_eval_n=10000, repeats=50),
    "quick": dict(rounds=4, steps=20, seeds=1, every=12000, eval_n=1000, epoch_eval_n=2000, repeats=30),
    "tiny": dict(rounds=1, steps=2, seeds=1, every=6000, eval_n=100, epoch_eval_n=100, repeats=3),
}
VARIANTS = {  # name -> changes to the default recipe, measured by --variants
    "default in float32": dict(precision="float32"),
    "default in bf16": dict(precision="mixed_bfloat16"),
    "default with XLA": dict(jit=True),
    "default at batch 128": dict(batch_size=128),
    "default at batch 256": dict(batch_size=256),
    "default without R1": dict(r1_gamma=0.0),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="MNIST .npz (default: $AIGC_MNIST, else Keras; synthetic if none)")
    parser.add_argument("--quick", action="store_true", help="short windows; from scratch with one seed")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run on synthetic data (tests)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--browser", action="store_true", help="also time the Streamlit app in Chromium (slow)")
    parser.add_argument("--only-draw", action="store_true",
                        help="only mouse-up to a drawing's result on /draw in Chromium (starts the app alone)")
    parser.add_argument("--cold-start", action="store_true",
                        help="only the app's first digits after `streamlit run` beside a trivial page's, in Chromium, "
                             "then the first clicks on a cold app (issue 22: <= 1.5x)")
    parser.add_argument("--rounds", type=bounded_int(1, 50), default=5, metavar="N",
                        help="--cold-start: starts of each page, interleaved (default: 5)")
    parser.add_argument("--drawings", type=bounded_int(2, 500), default=None, metavar="N",
                        help="--browser / --only-draw: different drawings timed (default: 21; --quick 11, --tiny 3)")
    parser.add_argument("--variants", action="store_true", help="also measure XLA, bf16 and batch sizes of the trainer")
    parser.add_argument("--batch-size", type=bounded_int(2, 8192), default=None,
                        help="batch of the throughput comparison (default: the default recipe's)")
    parser.add_argument("--seeds", type=bounded_int(1, 100), default=None, help="from scratch: seeds 0..N-1 (full: 3)")
    parser.add_argument("--epochs", type=bounded_int(1, 1000), default=1,
                        help="from scratch: epochs of the default (the tutorial trains one)")
    parser.add_argument("--tutorial-epochs", type=bounded_int(0, 100), default=1, metavar="N",
                        help="from scratch: epochs of the TF tutorial beside the default (0: the default alone)")
    parser.add_argument("--every", type=bounded_int(500, 60_000), default=None, metavar="IMAGES",
                        help="from scratch: images between evaluations in the first epoch (full: 6,000; --quick 12,000)")
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE", type=_recipe_item,
                        help="from scratch and throughput: train the default with this setting changed "
                             "(e.g. --set batch_size=64 --set precision=float32); repeatable")
    parser.add_argument("--threads", type=bounded_int(0, 1024), default=0,
                        help="TensorFlow threads, intra-op and inter-op each, as `train --threads` "
                             "(0 = the CPUs this process may use)")
    parser.add_argument("--checkpoint", default=None, help="generator for latency (default: shipped, else fresh)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON ('-' = stdout)")
    parser.add_argument("--ema", type=parse_variants, default=None, metavar="N[:CAP],...",
                        help="only EMAs of one run side by side: warm-ups N (decay caps CAP) updated after every step of "
                             "the default, each evaluated at epochs 1, 2, 4, ... and --epochs (seeds 0..--seeds-1)")
    parser.add_argument("--crowd", type=bounded_int(1, 500), default=None, metavar="N",
                        help="only the crowd bench: N concurrent sessions on `streamlit run app.py` (hosted, loopback)")
    parser.add_argument("--watchers", type=bounded_int(0, 500), default=0, metavar="W",
                        help="--crowd: W of the N sessions watch a running training job on /train instead of clicking "
                             "(starts a real trainer on --data; reports its speed with and without the crowd)")
    parser.add_argument("--page-costs", action="store_true",
                        help="only what one Train watcher and one click cost the server: a 10,000-epoch run's /train "
                             "open and poll, and clicks against a trivial Streamlit page")
    parser.add_argument("--attack", action="store_true",
                        help="only the password attack: --attackers sessions guess for --minutes while an owner "
                             "from another address unlocks every minute")
    parser.add_argument("--attackers", type=bounded_int(1, 500), default=20, help="--attack: guessing sessions")
    parser.add_argument("--addresses", type=bounded_int(1, 250), default=1,
                        help="--attack: the attackers' distinct addresses (1: one client with many tabs)")
    parser.add_argument("--minutes", type=positive_float(120), default=7.0, help="--attack: how long they guess")
    parser.add_argument("--canvas", type=bounded_int(1, 500), default=None, metavar="N",
                        help="only forged drawings: N sessions send canvas values at and over the size limit")
    parser.add_argument("--clicks", type=bounded_int(1, 1000), default=5, help="--crowd: New seed presses per session")
    parser.add_argument("--think", type=positive_float(600), default=2.0, help="--crowd: mean think time (s)")
    parser.add_argument("--ramp", type=positive_float(3600), default=2.0,
                        help="--crowd: the sessions arrive spread over this many seconds")


def _recipe_item(text: str) -> tuple[str, object]:
    """'name=value' -> (name, value) checked against the run spec's table."""
    name, _sep, value = text.partition("=")
    setting = SETTINGS.get(name.strip().replace("-", "_"))
    if setting is None or not _sep:
        raise argparse.ArgumentTypeError(f"expected SETTING=VALUE with a training setting, got {text!r}")
    try:
        if setting.kind is bool:
            return setting.name, setting.check({"true": True, "false": False}.get(value.strip().lower(), value))
        return setting.name, setting.parse(value.strip())
    except SpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(args: argparse.Namespace) -> int:
    if args.ema:
        return ema_main(args)
    if args.crowd:
        return crowd_main(args)
    if args.page_costs:
        return page_costs_main(args)
    if args.attack or args.canvas:
        return hostile_main(args)
    if args.only_draw:
        return draw_main(args)
    if args.cold_start:
        return cold_start_main(args)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if json_path_error(args.json):
        print(json_path_error(args.json), file=sys.stderr)
        return 2
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    recipe = dict(args.set)
    try:
        spec = RunSpec.resolve(**recipe)
    except SpecError as error:
        print(f"error: --set: {error}", file=sys.stderr)
        return 2
    settings = dict(MODES[mode], batch=args.batch_size or spec.batch_size)
    if args.seeds:
        settings["seeds"] = args.seeds
    configure(args.threads)
    results = {"machine": machine(), "mode": mode, "settings": settings, "started_at": time.time()}
    try:
        x, y, source = load_data(args)
        if "latency" in sections:
            _serving_generator(args.checkpoint)  # a bad --checkpoint fails now, not after minutes of training
    except Exception as error:  # DataError / CheckpointError: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    results["data"] = source
    steps = [("throughput", lambda: throughput(x, y, variants=args.variants, spec=spec, **settings)),
             ("flops", lambda: flops(results.get("throughput"), tiny=args.tiny, spec=spec)),
             ("latency", lambda: latency(checkpoint=args.checkpoint, repeats=settings["repeats"])),
             ("scratch", lambda: from_scratch(x, y, seeds=range(settings["seeds"]), epochs=args.epochs,
                                              every=args.every or settings["every"], eval_n=settings["eval_n"],
                                              tutorial_epochs=args.tutorial_epochs,
                                              epoch_eval_n=settings["epoch_eval_n"],
                                              synthetic=source == "synthetic", recipe=recipe))]
    for name, run in steps:
        if name in sections:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            results[name] = run()
    if args.browser:
        from bench.browser import browser
        from bench.draw import draw_only

        print("[bench] browser ...", file=sys.stderr, flush=True)
        results["browser"] = browser(repeats=5 if args.tiny else 20 if args.quick else 40, data=args.data)
        print("[bench] browser: mouse-up to a drawing's result (a server of its own) ...", file=sys.stderr, flush=True)
        results["draw"] = draw_only(n=_drawings(args))
    print(render(results))
    if "draw" in results:
        from bench.draw import render_draw

        print(render_draw(results["draw"]["draw"]))
    write_json(args.json, results)
    return 0


def _drawings(args: argparse.Namespace) -> int:
    """Drawings timed on /draw: the first (cold) apart, the median and p95 over the others."""
    return args.drawings or (3 if args.tiny else 11 if args.quick else 21)


def draw_main(args: argparse.Namespace) -> int:
    """--only-draw: mouse-up to a drawing's result in Chromium (it starts its own server); prints, optionally JSON."""
    from bench.draw import draw_only, render_draw

    result = draw_only(n=_drawings(args))
    print(render_draw(result["draw"]))
    print("\n".join(f"peak RSS {name}: {mb:.0f} MB" for name, mb in result["peak_rss_mb"].items()))
    write_json(args.json, result)
    return 0


def cold_start_main(args: argparse.Namespace) -> int:
    """--cold-start: the app's and a trivial page's first digits, interleaved, then first clicks; prints, optionally JSON."""
    from bench.cold_start import cold_start, render

    result = cold_start(rounds=args.rounds)
    print(render(result))
    write_json(args.json, result)
    return 0


def page_costs_main(args: argparse.Namespace) -> int:
    """--page-costs: a big run's Train page and the click floor (it starts its own servers); prints, optionally JSON."""
    from bench.page_costs import page_costs, render as render_costs

    result = page_costs(**({"polls": 5, "clicks": 5, "epochs": 200} if args.tiny else {}))
    print(render_costs(result))
    write_json(args.json, result)
    return 0


def hostile_main(args: argparse.Namespace) -> int:
    """--attack / --canvas N: hostile visitors against their own server; prints the figures, optionally JSON."""
    from bench import hostile

    if args.attack:
        result = hostile.password_attack(attackers=args.attackers, addresses=args.addresses, minutes=args.minutes)
        print(hostile.render_attack(result))
    else:
        result = hostile.forged_canvases(sessions=args.canvas)
        print(hostile.render_canvas(result))
    write_json(args.json, result)
    return 0


def crowd_main(args: argparse.Namespace) -> int:
    """--crowd N: the crowd benchmark alone (it starts its own server); prints the figures, optionally JSON."""
    from bench.crowd import crowd, render as render_crowd
    from bench.crowd_job import crowd_with_a_job

    if args.watchers >= args.crowd:
        print("error: --watchers must be fewer than the --crowd sessions", file=sys.stderr)
        return 2
    if args.watchers:
        result = crowd_with_a_job(sessions=args.crowd, watchers=args.watchers, clicks=args.clicks, think_s=args.think,
                                  data=args.data, ramp_s=args.ramp)
    else:
        result = crowd(sessions=args.crowd, clicks=args.clicks, think_s=args.think, ramp_s=args.ramp)
    print(render_crowd(result))
    write_json(args.json, result)
    return 0


# ---- training throughput -------------------------------------------------------------------------------------

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


def throughput(x, y, *, batch: int, rounds: int, steps: int, variants: bool = False, spec=None, **_) -> dict:
    """Images/s of the default trainer and the tutorial at `batch`, and ratios from interleaved rounds."""
    from aigc.engine.gan import pick_precision

    spec = (spec or RunSpec.resolve()).replace(batch_size=batch)

    def runner(recipe):
        return default_runner(x, y, batch=recipe.batch_size, precision=pick_precision(recipe.precision),
                              jit=recipe.jit, spec=recipe)[1], recipe.batch_size

    default_name = f"default (aigc.engine.gan.GAN, {spec.preset}, {pick_precision(spec.precision)})"
    runners = {default_name: runner(spec), "reference (TF DCGAN tutorial)": (reference_runner(x, batch=batch)[1], batch)}
    if variants:
        for name, changes in VARIANTS.items():
            runners[name] = runner(spec.replace(**changes))
    rates = interleave(runners, rounds=rounds, steps=steps)
    reference = rates["reference (TF DCGAN tutorial)"]
    rows = []
    for index, (name, values) in enumerate(rates.items()):
        ratios = [a / b for a, b in zip(values, reference)]  # same round: same background load
        rows.append({"name": name, "role": ("default", "reference")[index] if index < 2 else "variant",
                     "batch": runners[name][1], "img_per_s": float(np.median(values)),
                     "min": float(np.min(values)), "max": float(np.max(values)),
                     "ratio_vs_reference": float(np.median(ratios)), "ratios": [round(r, 3) for r in ratios],
                     "epoch_s": 60_000 / float(np.median(values))})
    return {"rows": rows, "rounds": rounds, "steps_per_window": steps, "precision": pick_precision(spec.precision)}


# ---- generation latency ---------------------------------------------------------------------------------------

def _serving_generator(checkpoint: str | None):
    from aigc.engine.checkpoints import load_generator
    from aigc.engine.models import build_generator

    shipped = settings.shipped_generator()
    path = checkpoint or (shipped if shipped.exists() else None)
    if path:
        generator, config, _card = load_generator(path)
        return generator, config, str(path)
    config = RunSpec.resolve().model
    return build_generator(config), config, "untrained dcgan generator (same compute)"


def latency(*, checkpoint: str | None, repeats: int, sizes=(1, 64, 100)) -> dict:
    """Median and p95 ms per request: aigc.engine.sampling.generate vs calling the Keras model vs predict."""
    from aigc.engine import sampling
    from bench.reference import make_generator_model

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
