"""The GAN itself: run spec, models, train step, data, trainer, checkpoints, sampling. No Streamlit."""
