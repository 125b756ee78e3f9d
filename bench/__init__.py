"""Benchmarks (`python -m aigc bench`) and the TensorFlow DCGAN tutorial reference."""
