"""AIGC digits: a GAN for MNIST (engine importable without Streamlit)."""
__version__ = "0.1.0"
