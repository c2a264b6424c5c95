"""Command-line commands of `python app.py`, one module per area, gathered by app.py."""
