"""Dash callbacks, one module per page, each with register(app, deps)."""


def register_all(app, deps) -> None:
    """Register every page's callbacks."""
    return None
