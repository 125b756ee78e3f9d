"""What a server needs without Streamlit: jobs, hosting policy, the password limiter, retention, caches, chart data."""
