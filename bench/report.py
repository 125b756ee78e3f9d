"""The benchmark's results as Markdown tables (python -m aigc bench prints this)."""
from __future__ import annotations

import statistics

def _table(headers: list[str], rows: list[list]) -> str:
    cells = [[f"{c:.3g}" if isinstance(c, float) and abs(c) < 100 else f"{c:.0f}" if isinstance(c, float) else str(c)
              for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells])


def render(results: dict) -> str:
    """The results as Markdown tables."""
    m = results["machine"]
    parts = [f"# aigc bench ({results['mode']}): {m['cpu']}, {m['cores']} cores, {' '.join(m['flags'])}, "
             f"TF {m['tensorflow']}, GPUs: {len(m['gpus'])}, data: {results['data']}"]
    if "throughput" in results:
        t = results["throughput"]
        parts += [f"\n## Training throughput ({t['rounds']} interleaved rounds x {t['steps_per_window']} steps)",
                  _table(["trainer", "batch", "img/s (median)", "min", "max", "x reference", "s per 60k epoch"],
                         [[r["name"], r["batch"], r["img_per_s"], r["min"], r["max"], r["ratio_vs_reference"],
                           r["epoch_s"]] for r in t["rows"]])]
    if "flops" in results:
        f = results["flops"]
        parts += [f"\n## Compute per image (analytic) vs this CPU (matmul peak: fp32 "
                  f"{f['peak_gflops_measured']['float32']:.0f} GFLOP/s, bf16 {f['peak_gflops_measured']['bfloat16']:.0f};"
                  f" nominal fp32 {f['peak_gflops_fp32_nominal'] or 0:.0f})",
                  _table(["model", "generate MFLOP/img", "train MFLOP/img", "train GFLOP/s", "share of peak", "peak of"],
                         [[k, v["generate_mflops"], v["train_mflops"], v.get("train_gflops", "-"),
                           v.get("share_of_peak", "-"), v.get("peak_dtype", "-")] for k, v in f["models"].items()])]
    if "latency" in results:
        lat = results["latency"]
        parts += [f"\n## Generation latency in-process, ms ({lat['repeats']} repeats; {lat['generator']})",
                  _table(["digits", "method", "median", "p95"],
                         [[r["n"], r["method"], r["median_ms"], r["p95_ms"]] for r in lat["rows"]])]
    if "scratch" in results:
        parts += [render_scratch(results["scratch"])]
    if "browser" in results:
        from bench.browser import render_browser

        parts += [render_browser(results["browser"])]
    return "\n".join(parts)


def render_scratch(q: dict) -> str:
    """From scratch: per seed and median, the default beside the tutorial; then the median curves."""
    if "skipped" in q:
        return f"\n## From scratch: skipped ({q['skipped']})"
    target = f"{q['target_accuracy']:.0%}"
    recipe = ", ".join(f"{k} {v}" for k, v in q["recipe"].items())
    alone = not any(r["tutorial"]["curve"] for r in q["runs"])  # --tutorial-epochs 0
    head = (f"\n## From scratch, {'the default alone' if alone else 'beside the tutorial'} ({len(q['seeds'])} seed(s); "
            f"default: {recipe}; "
            f"{q['eval_n']} samples per evaluation every {q['every']} images in the first epoch, "
            f"{q.get('epoch_eval_n', q['eval_n'])} at epoch ends)")
    headers = ["seed", f"images to {target}", f"train s to {target}", f"images / s to {target}, held",
               "acc @ 1 epoch", "FDD @ 1 epoch",
               "s for 1 epoch", f"FDD @ {q['epochs']} ep", f"acc @ {q['epochs']} ep", "best FDD (epoch)",
               "collapse after epoch 1",
               "tutorial FDD @ 1 epoch", "tutorial s for 1 epoch"]

    def row(label, d, t):
        held = (f"{_or_dash(d.get('images_to_held_target'))} / {_or_dash(d.get('seconds_to_held_target'))}"
                if "images_to_held_target" in d else "-")
        return [label, _or_dash(d["images_to_target"]), _or_dash(d["seconds_to_target"]), held,
                _or_dash(d["epoch1_accuracy"]),
                _or_dash(d["epoch1_fdd"]), _or_dash(d["epoch1_seconds"]), _or_dash(d["final_fdd"]),
                _or_dash(d["final_accuracy"]), _best(d), "yes" if d["collapse_seen"] else "no", _or_dash(t["epoch1_fdd"]),
                _or_dash(t["epoch1_seconds"])]
    rows = [row(r["seed"], r["default"], r["tutorial"]) for r in q["runs"]]
    rows.append(row("median", q["median"]["default"], q["median"]["tutorial"]))
    curve_rows = []
    for index, point in enumerate(q["runs"][0]["default"]["curve"]):
        values = [r["default"]["curve"][index] for r in q["runs"] if index < len(r["default"]["curve"])]
        tutorial = [r["tutorial"]["curve"][index] for r in q["runs"] if index < len(r["tutorial"]["curve"])]
        curve_rows.append([point["images"], _median(values, "train_s"), _median(values, "class_accuracy"),
                           _median(values, "fdd"), _median(tutorial, "train_s"), _median(tutorial, "fdd")])
    return "\n".join([head, _table(headers, rows), "\nMedian curves (- where the tutorial had stopped):",
                      _table(["images", "default train s", "default acc", "default FDD", "tutorial train s",
                              "tutorial FDD"], curve_rows)])


def _median(points: list[dict], key: str):
    values = [p[key] for p in points if p.get(key) is not None]
    return float(statistics.median(values)) if values else "-"


def _best(summary: dict) -> str:
    if summary.get("best_fdd") is None:
        return "-"
    return f"{summary['best_fdd']:.3g} ({summary['best_fdd_epochs']:g})"


def _or_dash(value):
    return "-" if value is None else value
