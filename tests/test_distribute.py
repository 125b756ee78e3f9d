"""MirroredStrategy on two logical CPU devices: one GAN step splits the batch and stays finite.

Logical devices must be configured before TensorFlow initialises, so the check runs in a
fresh interpreter.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from aigc.engine.spec import RunSpec
    from aigc.engine.data import epoch_batches, synthetic_mnist
    from aigc.engine.gan import GAN, pick_strategy

    strategy = pick_strategy()
    arrays = synthetic_mnist(64, 8)
    gan = GAN(RunSpec.resolve(batch_size=16, width=64, class_loss=0.0, r1_gamma=0.0), strategy=strategy)
    gan.attach_data(arrays["x_train"], arrays["y_train"])
    rows = epoch_batches(64, batch_size=16, epoch_seed=0)[:2]
    slices = strategy.experimental_distribute_values_from_function(lambda context: gan._replica_rows(rows[0], context))
    before = [w.copy() for w in gan.generator.get_weights()]
    metrics = gan.train_steps(rows)
    from aigc.engine.sampling import generate  # the trainer samples from mirrored weights after each epoch
    images, _ = generate(gan.serving_generator, 3, seed=0, config=gan.config)
    print(json.dumps({
        "sample_shape": list(images.shape),
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "per_replica_rows": [list(map(int, t)) for t in strategy.experimental_local_results(slices)],
        "row": list(map(int, rows[0])),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "generator_changed": any(not np.allclose(a, b) for a, b in zip(before, gan.generator.get_weights())),
    }))
""")


@pytest.mark.slow
def test_mirrored_strategy_splits_the_batch_over_two_logical_cpus():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy"
    assert result["replicas"] == 2
    first, second = result["per_replica_rows"]
    assert first + second == result["row"] and len(first) == 8, "each replica trains on its half of the global batch"
    assert all(abs(v) < 1e6 and v == v for v in result["metrics"].values()), result["metrics"]
    assert 0 <= result["metrics"]["d_real"] <= 1 and 0 <= result["metrics"]["d_fake"] <= 1
    assert result["generator_changed"]
    assert result["sample_shape"] == [3, 28, 28]
