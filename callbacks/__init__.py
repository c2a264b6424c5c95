"""Dash callbacks, one module per page, each with register(app, deps)."""


def register_all(app, deps) -> None:
    """Register every page's callbacks."""
    from callbacks import overview, shell

    shell.register(app, deps)
    overview.register(app, deps)
