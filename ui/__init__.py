"""The edges: the `evr` command line (ui/cli.py) and the Streamlit app. Only they read config.toml."""
