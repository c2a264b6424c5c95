"""Commands of the intake area (filled in by its owner)."""

COMMANDS: list = []
