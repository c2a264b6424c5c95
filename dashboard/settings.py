"""Settings read from CITYBRAIN_* environment variables: one dataclass, a default and a help line each."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT / "var" / "citybrain.db"
PREFIX = "CITYBRAIN_"


def _setting(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Settings:
    """Every knob of the app; `Settings.from_env()` reads them, the README lists them."""

    database_url: str = _setting(
        f"sqlite:///{DEFAULT_DB}", "SQLAlchemy URL of the store (SQLite file by default; postgresql://... for PostgreSQL)."
    )
    cache_url: str = _setting("", "Empty for an in-process cache; redis://host:port/db for Redis shared by all workers.")
    host: str = _setting("127.0.0.1", "Address the web server listens on.")
    port: int = _setting(8050, "Port the web server listens on.")
    timezone: str = _setting("Asia/Shanghai", "The city's time zone: every time on screen and every 'today' uses it.")
    lang: str = _setting("en", "Default interface language: en or zh.")
    tile_url: str = _setting("", "XYZ tile URL template for the basemap ({z}/{x}/{y}); empty means no basemap tiles.")
    tile_attribution: str = _setting("", "Attribution text shown for the basemap tiles.")
    demo_grids: int = _setting(5000, "How many grids the demo city has when it is built on first run.")
    demo_days: int = _setting(90, "Days of incident history the demo city is built with.")
    demo_per_day: int = _setting(1500, "Average incidents a day in the demo history.")
    live: bool = _setting(True, "Run the live incident simulator while serving (on by default for the demo).")
    build_demo: bool = _setting(True, "Build the demo city on first run when the store is empty.")
    secret_key: str = _setting(
        "",
        "Flask secret key for sessions and CSRF; empty: one is made on first start and kept beside the store "
        "(SQLite: <database>.secret-key, mode 0600; PostgreSQL: the store's meta table), shared by every worker and server.",
    )
    debug: bool = _setting(
        False,
        "Dash debug mode with tracebacks in the browser: only when CITYBRAIN_HOST is 127.0.0.1/localhost (refused otherwise).",
    )
    secure_cookies: bool = _setting(
        False, "Send the session and CSRF cookies over HTTPS only (turn on whenever the app is served over https)."
    )
    session_hours: int = _setting(12, "Hours a user's sign-in lasts (wall kiosk links stay signed in until revoked).")
    signin_rate_limit: str = _setting(
        "20/minute",
        "Failed sign-in attempts (and bad kiosk links) allowed per client address, e.g. 20/minute; counted in Redis "
        "when CITYBRAIN_CACHE_URL is Redis.",
    )
    webhook_allow: str = _setting(
        "",
        "Hosts, *.domains, addresses or networks (comma-separated, e.g. 10.20.0.0/16,hooks.cgj.example) webhooks may go to "
        "besides public addresses; empty: public addresses only (never loopback, link-local, private or multicast).",
    )
    auto_escalate_seconds: int = _setting(
        0, "Seconds between sweeps that escalate overdue incidents automatically (督办); 0 turns automatic escalation off."
    )
    warnings_interval: int = _setting(
        60, "Seconds between early-warning passes (预测预警) run in the background by the server; 0 turns them off."
    )
    rollup_refresh_seconds: int = _setting(
        30,
        "Seconds between refreshes of the trends roll-up (built on first start); 0 leaves it to `python app.py rollup refresh`.",
    )

    background: str = _setting(
        "in-process",
        "Where periodic work runs (warning passes, roll-ups, escalation, webhooks): in-process (the embedded default), "
        "or off in web processes when `python app.py worker` runs it.",
    )
    store_timeout: int = _setting(
        10,
        "Seconds a web request may hold a store connection; past it the call fails with 503 (a stalled database cannot "
        "hang the screens). Commands and the worker allow more.",
    )
    log_format: str = _setting("text", "Log lines as plain text, or json: one JSON object a line for log collectors.")
    trusted_proxies: int = _setting(
        0,
        "How many reverse proxies stand in front (nginx: 1): the client's address is then taken from X-Forwarded-For "
        "for rate limits, logs and /metrics; 0 ignores that header (anyone could write it).",
    )
    metrics_allow: str = _setting(
        "127.0.0.1,::1",
        "Addresses or networks (comma-separated, e.g. 127.0.0.1,10.0.0.0/8) that may read /metrics without signing in; "
        "administrators may read it from anywhere.",
    )
    web_threads: int = _setting(
        16, "Threads per web process for pages, callbacks and the API (live streams need none: they wait on the event loop)."
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Settings from the environment, with keyword overrides winning (tests use them)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(raw, type(f.default))
        values.update(overrides)
        return cls(**values)

    @classmethod
    def documented(cls) -> list[tuple[str, str, str]]:
        """(variable, default, help) for every setting, for the README and `app.py settings`."""
        return [(PREFIX + f.name.upper(), str(f.default), f.metadata["help"]) for f in fields(cls)]


def _parse(raw: str, kind: type):
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    return raw
