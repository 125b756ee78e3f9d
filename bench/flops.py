"""Compute per image (an analytic FLOP count) and this CPU's measured matmul peak, for `aigc bench`."""
from __future__ import annotations

import os
import time

import numpy as np

from aigc.cpus import clock_ghz

def forward_flops(model) -> int:
    """Multiply-adds x 2 of Dense/Conv2D/Conv2DTranspose/Dot layers for one image (analytic count)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, layers.Conv2DTranspose):
            # Each input pixel scatters a k x k x c_out patch: in_h * in_w * k * k * c_in * c_out.
            in_h, in_w, c_in = layer.input.shape[1:]
            total += 2 * in_h * in_w * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, layers.Conv2D):
            out_h, out_w, _c = layer.output.shape[1:]
            total += 2 * out_h * out_w * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, layers.Dot):
            total += 2 * int(layer.input[0].shape[-1])
    return int(total)


def train_flops(generator, discriminator) -> int:
    """Per training image: forward G + D(real) + D(fake), backward ~2x forward (the usual rule)."""
    return 3 * (forward_flops(generator) + 2 * forward_flops(discriminator))


def measure_peak(*, dtype: str, size: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of a large square matmul in dtype (float32, or bfloat16 which oneDNN maps to AMX)."""
    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda m: tf.matmul(m, m))
    matmul(a).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul(a).numpy()
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9


def flops(throughput_result: dict | None, *, tiny: bool = False, spec=None) -> dict:
    """FLOPs per image (generation and training) of both models, against the measured matmul peak of the
    precision each trains in (the default's: bf16 when that is its default; the tutorial's: float32)."""
    from aigc.engine.spec import RunSpec
    from aigc.engine.models import build_discriminator, build_generator
    from bench.reference import make_discriminator_model, make_generator_model

    config = (spec or RunSpec.resolve()).model
    models = {"default": (build_generator(config), build_discriminator(config)),
              "reference": (make_generator_model(), make_discriminator_model())}
    peak = {dtype: measure_peak(dtype=dtype, size=256 if tiny else 2048, seconds=0.1 if tiny else 1.0)
            for dtype in ("float32", "bfloat16")}
    clock = clock_ghz()
    out = {"peak_gflops_measured": peak, "clock_ghz": clock,
           # 2 AVX-512 FMA units x 16 fp32 lanes x 2 FLOPs per core per cycle (Sapphire Rapids class cores).
           "peak_gflops_fp32_nominal": (os.cpu_count() or 1) * 64 * clock if clock else None, "models": {}}
    rows = (throughput_result or {}).get("rows", [])
    rates = {row["role"]: row["img_per_s"] for row in rows if row.get("role") in models}
    default_dtype = "bfloat16" if (throughput_result or {}).get("precision") == "mixed_bfloat16" else "float32"
    for name, (generator, discriminator) in models.items():
        entry = {"generate_mflops": forward_flops(generator) / 1e6,
                 "train_mflops": train_flops(generator, discriminator) / 1e6}
        if name in rates:
            dtype = default_dtype if name == "default" else "float32"
            achieved = entry["train_mflops"] * rates[name] / 1e3
            entry.update(train_gflops=achieved, peak_dtype=dtype, share_of_peak=achieved / peak[dtype])
        out["models"][name] = entry
    return out
