"""Dash callbacks, one module per page, each with register(app, deps)."""


def register_all(app, deps) -> None:
    """Register every page's callbacks."""
    from callbacks import dispatch, inbox, overview, shell, trends

    shell.register(app, deps)
    overview.register(app, deps)
    dispatch.register(app, deps)
    trends.register(app, deps)
    inbox.register(app, deps)
