"""AIGC_MNIST=mnist.npz python docs/bench/issue23-threads/threads.py INTRA INTER STEPS (from the repository root):
img/s of the default recipe's train steps (aigc.engine.epoch_loop.Steps, the trainer's own) with TensorFlow's
intra-op and inter-op pools set to INTRA and INTER (0 = TensorFlow's default). One process per setting: the pools
are fixed once TensorFlow runs. The output of three interleaved rounds is in threads_matrix.txt."""
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
intra, inter, steps = map(int, sys.argv[1:4])
if intra: tf.config.threading.set_intra_op_parallelism_threads(intra)
if inter: tf.config.threading.set_inter_op_parallelism_threads(inter)
sys.path.insert(0, os.getcwd())
from aigc.engine.spec import RunSpec
from aigc.engine.gan import GAN
from aigc.engine.epoch_loop import Steps
d = np.load(os.environ["AIGC_MNIST"])
spec = RunSpec.resolve()
gan = GAN(spec); gan.attach_data(d["x_train"], d["y_train"])
s = Steps(gan, len(d["x_train"])); run = s.runner()
run(64)  # trace + warm
t = time.perf_counter(); run(steps); dt = time.perf_counter() - t
print(f"intra={intra} inter={inter}: {steps * spec.batch_size / dt:.0f} img/s ({tf.config.threading.get_intra_op_parallelism_threads()}, {tf.config.threading.get_inter_op_parallelism_threads()})", flush=True)
