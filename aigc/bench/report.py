"""The benchmark's results as Markdown tables (python -m aigc bench prints this)."""
from __future__ import annotations

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
                  _table(["model", "generate MFLOP/img", "train MFLOP/img", "train GFLOP/s", "share of fp32 peak"],
                         [[k, v["generate_mflops"], v["train_mflops"], v.get("train_gflops", "-"),
                           v.get("share_of_fp32_peak", "-")] for k, v in f["models"].items()])]
    if "latency" in results:
        lat = results["latency"]
        parts += [f"\n## Generation latency in-process, ms ({lat['repeats']} repeats; {lat['generator']})",
                  _table(["digits", "method", "median", "p95"],
                         [[r["n"], r["method"], r["median_ms"], r["p95_ms"]] for r in lat["rows"]])]
    if "quality" in results:
        parts += [render_quality(results["quality"])]
    if "browser" in results:
        from aigc.bench.browser import render_browser

        parts += [render_browser(results["browser"])]
    return "\n".join(parts)


def render_quality(q: dict) -> str:
    if "skipped" in q:
        return f"\n## Time to quality: skipped ({q['skipped']})"
    rows = [[label, p["train_s"], p["epochs"], p.get("fdd", "-"), p.get("digit_score", "-"),
             p.get("class_accuracy", "-") if label != "reference" else "n/a", p.get("collapsed_digits", "-")]
            for label, points in q["curves"].items() for p in points]
    reference_s = q.get("reference_budget_s", q["budget_s"])
    budgets = f"same training-time budget {q['budget_s']:.0f} s each" if reference_s == q["budget_s"] else \
        f"training-time budget {q['budget_s']:.0f} s, the reference {reference_s:.0f} s"
    return "\n".join([f"\n## Time to quality ({budgets}, {q['eval_n']} samples per evaluation)",
                      _table(["model", "train s", "epochs", "FDD", "digit score", "class acc", "collapsed"], rows),
                      f"training seconds to reach the reference's best FDD: {q['default_matches_reference_at_s']}"])
