"""Commands of the demo area (filled in by its owner)."""

COMMANDS: list = []
