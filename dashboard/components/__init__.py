"""Reusable widgets of the pages: header, map, KPI cards, department board, charts, incident card."""
