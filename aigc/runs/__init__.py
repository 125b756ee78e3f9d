"""The run-directory protocol between the trainer and the UI: paths, files, lock, lifecycle. No TensorFlow."""
