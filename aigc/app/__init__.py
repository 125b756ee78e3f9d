"""The Streamlit views, background jobs and hosting policy: the only package that imports streamlit."""
