"""Commands of the geo area (filled in by its owner)."""

COMMANDS: list = []
