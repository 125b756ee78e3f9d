"""Explore the conditional generator: write a number, invert a drawing, style directions, calibrated doubt (no Streamlit)."""
