"""The model and the store of CityBrain Command: tables, lifecycle, geography, metrics (never imports dash)."""
