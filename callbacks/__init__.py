"""Dash callbacks, one module per page, each with register(app, deps) (dispatch_actions.py runs the desk's buttons)."""


def register_all(app, deps) -> None:
    """Register every page's callbacks."""
    from callbacks import admin, admin_audit, alerts, dispatch, inbox, overview, shell, trends, warnings

    shell.register(app, deps)
    overview.register(app, deps)
    dispatch.register(app, deps)
    trends.register(app, deps)
    inbox.register(app, deps)
    alerts.register(app, deps)
    warnings.register(app, deps)
    admin.register(app, deps)
    admin_audit.register(app, deps)
