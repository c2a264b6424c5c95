"""Metrics (reads only): the overview KPIs and department board, the in-memory working set, the leaders' trends and their roll-ups."""
