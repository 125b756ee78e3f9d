"""`python -m aigc eval`: measure a generator with the shipped evaluator, or retrain the evaluator.

    python -m aigc eval [--checkpoint PATH] [--n 10000] [--seed 0] [--json]
    python -m aigc eval --train-evaluator [--data PATH] [--epochs 6]
    python -m aigc eval --ladder [--data PATH]

Every user error is one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from aigc import settings
from aigc.cli.args import bounded_int, fail, float_between, help_with
from aigc.text import counted
from aigc.explore.params import SCALE_DEFAULT, SCALE_MAX, SCALE_MIN, SEED_MAX, SEED_MIN

MIN_N, MAX_N = 10, 60_000
RUNG_NAMES = {"floor": "floor", "noise_0.1": "noise 0.1", "shift_1px": "shift 1px", "blur_0.7": "blur 0.7"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help=help_with(
        "generator .keras", "generator.keras in $AIGC_CHECKPOINT_DIR, else checkpoints/"))
    parser.add_argument("--n", type=bounded_int(MIN_N, MAX_N), default=10_000,
                        help=help_with("samples to draw (FDD grows as they shrink: compare figures on the same count)",
                                       10000, MIN_N, MAX_N))
    parser.add_argument("--seed", type=bounded_int(SEED_MIN, SEED_MAX), default=0,
                        help=help_with("latent seed (with --train-evaluator: the training seed)", 0, SEED_MIN, SEED_MAX))
    parser.add_argument("--latent-scale", type=float_between(SCALE_MIN, SCALE_MAX), default=SCALE_DEFAULT,
                        help=help_with("multiplies the latents, as the Generate page's latent scale (truncation) does: "
                                       "below 1 tidier, more alike digits, above 1 more varied ones",
                                       SCALE_DEFAULT, SCALE_MIN, SCALE_MAX, whole=False))
    parser.add_argument("--batch-size", type=bounded_int(1, 10_000), default=500,
                        help=help_with("images per call of the generator and the evaluator", 500, 1, 10_000))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--evaluator", default=None,
                        help=help_with("evaluator .keras", f"{settings.EVALUATOR_FILE} beside the shipped generator"))
    parser.add_argument("--stats", default=None, help=help_with(
        "reference stats .npz", f"{settings.EVALUATOR_STATS_FILE} beside the shipped generator"))
    group = parser.add_argument_group("maintenance (need MNIST)")
    group.add_argument("--train-evaluator", action="store_true",
                       help="retrain the evaluator, then write its reference stats and the ladder")
    group.add_argument("--ladder", action="store_true", help="recompute the calibration ladder only")
    group.add_argument("--data", default=None, help=help_with("MNIST .npz", "$AIGC_MNIST, else Keras"))
    group.add_argument("--epochs", type=bounded_int(1, 100), default=None,
                       help=help_with("evaluator training epochs", 6, 1, 100))

def main(args: argparse.Namespace) -> int:
    model_path = Path(args.evaluator) if args.evaluator else settings.evaluator_path()
    stats_path = Path(args.stats) if args.stats else settings.evaluator_stats_path()
    if args.train_evaluator and args.ladder:
        return fail("choose one of --train-evaluator and --ladder")
    try:
        if args.train_evaluator or args.ladder:
            return _maintenance(args, model_path, stats_path)
        return _evaluate(args, model_path, stats_path)
    except KeyboardInterrupt:
        return fail("interrupted")


def _maintenance(args, model_path: Path, stats_path: Path) -> int:
    from aigc.quality import evaluator_train
    from aigc.engine.data import DataError
    from aigc.quality.metrics import EvaluatorError

    if not model_path.parent.is_dir():
        return fail(f"--evaluator: folder does not exist: {model_path.parent}")
    try:
        if args.ladder:
            evaluator_train.recompute_ladder(data=args.data, model_path=model_path, stats_path=stats_path)
        else:
            epochs = args.epochs or evaluator_train.DEFAULT_EPOCHS
            evaluator_train.main(data=args.data, model_path=model_path, stats_path=stats_path, epochs=epochs,
                                 seed=args.seed)
    except (DataError, EvaluatorError) as error:
        return fail(str(error))
    print(f"wrote {stats_path}")
    return 0


def _evaluate(args, model_path: Path, stats_path: Path) -> int:
    from aigc.quality import metrics
    from aigc.engine.checkpoints import CheckpointError, load_generator

    checkpoint = Path(args.checkpoint) if args.checkpoint else settings.shipped_generator()
    try:
        generator, config, card = load_generator(checkpoint)
        evaluator = metrics.load_evaluator(model_path, stats_path)
    except (metrics.EvaluatorError, CheckpointError) as error:
        return fail(str(error))
    try:
        result = metrics.evaluate_generator(generator, config, n=args.n, seed=args.seed, batch_size=args.batch_size,
                                            evaluator=evaluator, per_digit=True, latent_scale=args.latent_scale)
    except Exception as error:  # noqa: BLE001  (a generator whose call fails: say so in one line)
        return fail(f"{checkpoint} could not be sampled ({type(error).__name__}: {error})")
    result.update(checkpoint=str(checkpoint), card=card)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(format_report(result))
    return 0


def ladder_position(fdd: float, ladder: dict) -> str:
    """Where an FDD sits on the ladder, in words: 'below the floor', 'between noise 0.1 and shift 1px', ..."""
    rungs = sorted(ladder.items(), key=lambda item: item[1])
    if not rungs:
        return "no ladder"
    if fdd <= rungs[0][1]:
        return f"at or below the {RUNG_NAMES.get(rungs[0][0], rungs[0][0])} rung"
    for (low_name, low), (high_name, high) in zip(rungs, rungs[1:]):
        if fdd <= high:
            return f"between {RUNG_NAMES.get(low_name, low_name)} and {RUNG_NAMES.get(high_name, high_name)}"
    top = rungs[-1][0]
    return f"above the {RUNG_NAMES.get(top, top)} rung"


def format_report(result: dict) -> str:
    """The human-readable table of an evaluate_generator result: every figure with its sample count.

    FDD grows as the sample count shrinks, so an FDD is placed on the ladder only when both have the same count.
    """
    ladder, n, ladder_n = result.get("ladder") or {}, result["n"], result.get("ladder_n")
    on_n = f"on {counted(n, 'sample')}"
    rungs = " | ".join(f"{RUNG_NAMES.get(k, k)} {v:.2f}" for k, v in ladder.items())
    lines = [
        f"checkpoint     {result['checkpoint']} ({result.get('preset')}, "
        f"{'conditional' if result.get('conditional') else 'unconditional'})",
        f"samples        {n:,} (seed {result.get('seed')}"
        + (f", latent scale {result['latent_scale']:g})" if result.get("latent_scale", 1.0) != 1.0 else ")"),
        f"FDD            {result['fdd']:.3f} {on_n}" + (f" ({ladder_position(result['fdd'], ladder)})"
                                                      if ladder_n in (n, None) else ""),
        f"  ladder       {rungs}" + (f" (MNIST images, clean and degraded, {ladder_n:,} each)" if ladder_n else
                                     " (its sample count is not recorded)"),
    ]
    if result.get("per_class_fdd"):
        lines.append("  per digit    " + "  ".join(f"{d}:{v:.2f}" for d, v in enumerate(result["per_class_fdd"])
                                                   if v is not None) + " (against that digit's test images)")
    if ladder_n and ladder_n != n:
        lines.append(f"  note         the ladder is on {ladder_n:,} samples and this FDD {on_n}: not comparable "
                     f"(FDD grows as the sample count shrinks); use --n {ladder_n} to place it on the ladder")
    lines += precision_recall_lines(result)
    lines.append(f"digit score    {result['digit_score']:.3f} / 10 {on_n}")
    if result.get("class_accuracy") is not None:
        per_digit = "  ".join(f"{d}:{100 * a:.1f}" for d, a in enumerate(result["per_class_accuracy"]) if a is not None)
        lines.append(f"class accuracy {100 * result['class_accuracy']:.2f}% {on_n}")
        lines.append(f"  per digit    {per_digit}")
    else:
        lines.append("class accuracy n/a (unconditional generator)")
    lines.append("histogram      " + "  ".join(f"{d}:{c}" for d, c in enumerate(result["class_histogram"])))
    lines.append(f"collapse       {result['collapse_warning'] or 'none (every digit above 25% of its share)'}")
    return "\n".join(lines)


def precision_recall_lines(result: dict) -> list[str]:
    """Precision and recall with their counts, the real-vs-real ceiling on the ladder's count, recall per digit."""
    if result.get("precision") is None:
        why = ("its stats carry no test features: python -m aigc eval --ladder --data mnist.npz"
               if result.get("pr_n") is None else "non-finite samples")
        return [f"precision      n/a ({why})"]
    pr_n, k, ladder_n = result["pr_n"], result.get("pr_k"), result.get("ladder_n")
    on = f"on {pr_n:,} samples vs {pr_n:,} MNIST test images, k = {k}"
    pr_ladder = result.get("pr_ladder") or {}
    # Like FDD, both figures depend on the count (k-NN balls shrink as points get denser): a ceiling only on its own.
    floor = pr_ladder.get("floor") if ladder_n == pr_n else None
    lines = [f"{name:<15}{result[name]:.3f} {on}" + (f" (real vs real: {floor[name]:.3f})" if floor else "")
             for name in ("precision", "recall")]
    rungs = " | ".join(f"{RUNG_NAMES.get(name, name)} {pr['precision']:.2f} / {pr['recall']:.2f}"
                       for name, pr in pr_ladder.items())
    if rungs:
        lines.append(f"  ladder       {rungs} (precision / recall" + (f", {ladder_n:,} each)" if ladder_n else ")"))
    if pr_ladder and ladder_n and ladder_n != pr_n:
        lines.append(f"  note         precision and recall on {pr_n:,} samples: the ladder's are on {ladder_n:,}")
    per_digit = result.get("per_class_recall") or []
    if per_digit:
        lines.append("  recall/digit " + "  ".join(f"{d}:{r:.2f}" for d, r in enumerate(per_digit) if r is not None))
    return lines
