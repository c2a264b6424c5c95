"""API keys at the door: the key a request presents, its scopes, the body limit, and rate limits per key (flask-limiter).

Order per request: `identify` (an app-level before_request registered ahead of the limiter)
caps the body and notes the presented key; flask-limiter then counts the request against the
key (or, without a valid key, against the caller's address, so guessing keys is throttled
too); the view finally `require`s the scope it needs, checking the key in its own transaction.
"""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from limits.storage import MemoryStorage
from sqlalchemy.engine import Connection
from werkzeug.exceptions import RequestEntityTooLarge

from dashboard.api.errors import ApiError, forbidden
from data import store
from data.accounts.apikeys import ApiKey, find_key, hash_key

KEY_HEADER = "X-API-Key"
API_BLUEPRINTS = frozenset({"api_v1", "open311"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

# Defaults, each overridable in the Flask config (tests and the benchmark do).
MAX_BODY_BYTES = 4 * 1024 * 1024  # a full batch of 1,000 incidents is well under 1 MiB
KEY_LIMIT = "1200/minute"  # per key, unless the key carries its own (api-key create --rate-limit)
ANONYMOUS_LIMIT = "120/minute"  # per address, for requests without a valid key
CONFIG_MAX_BODY = "CITYBRAIN_API_MAX_BYTES"
CONFIG_KEY_LIMIT = "CITYBRAIN_API_KEY_LIMIT"
CONFIG_ANONYMOUS_LIMIT = "CITYBRAIN_API_ANONYMOUS_LIMIT"

_SECRET = "citybrain_api_secret"
CONTEXT_EXTENSION = "citybrain_api"  # where dashboard.api.context keeps the ApiContext


def identify() -> None:
    """Before any API view (and before the limiter): cap the body, note the presented key."""
    if request.blueprint not in API_BLUEPRINTS:
        return
    request.max_content_length = current_app.config.get(CONFIG_MAX_BODY, MAX_BODY_BYTES)
    setattr(g, _SECRET, _presented_secret())


def _presented_secret() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    if request.headers.get(KEY_HEADER):
        return request.headers[KEY_HEADER].strip()
    if request.blueprint == "open311":
        # Open311 clients send api_key as a parameter: in the query, or in the form of a POST.
        if "api_key" in request.args:
            return request.args["api_key"].strip() or None
        if request.method == "POST" and request.mimetype in FORM_TYPES:
            try:
                return (request.form.get("api_key") or "").strip() or None
            except RequestEntityTooLarge:
                return None  # the view reads the form again and answers 413
    return None


def presented() -> bool:
    """Whether the request carries an API key at all (Open311 reads are public without one)."""
    return bool(getattr(g, _SECRET, None))


def require(conn: Connection, scope: str | None, *, open311: bool = False) -> ApiKey:
    """The request's working key carrying `scope` (any scope when None), or ApiError 403 saying what is wrong.

    Looked up afresh on the view's own connection, so a key revoked a moment ago is refused.
    """
    secret = getattr(g, _SECRET, None)
    if not secret:
        where = "an api_key parameter" if open311 else f"an {KEY_HEADER} header or Authorization: Bearer"
        raise forbidden(f"an API key is required: send it as {where}", code="missing_key")
    key = find_key(conn, secret)
    if key is None:
        raise forbidden("the API key is not recognised", code="invalid_key")
    if not key.active:
        raise forbidden(f"the API key {key.prefix}… was revoked on {key.revoked_at:%Y-%m-%d}", code="revoked_key")
    if scope is not None and scope not in key.scopes:
        raise forbidden(
            f"the API key {key.name!r} may {', '.join(sorted(key.scopes))}; this needs the {scope!r} scope",
            code="insufficient_scope",
        )
    return key


class KeyCache:
    """Keys by hash for the rate limiter only (which allowance, how large), kept `seconds` per process.

    Authorisation never uses it (see `require`); a revoked key at worst keeps its allowance
    for a few seconds while every request it makes is refused.
    """

    def __init__(self, seconds: float = 30.0, size: int = 10_000):
        self.seconds, self.size = seconds, size
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> ApiKey | None:
        digest = hash_key(secret)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1]
        engine = current_app.extensions["citybrain"].engine
        with store.reading(engine) as conn:
            key = find_key(conn, secret)
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()  # guessed keys must not grow this without bound
            self._entries[digest] = (now + self.seconds, key)
        return key


def _limited_key() -> ApiKey | None:
    secret = getattr(g, _SECRET, None)
    if not secret:
        return None
    key = current_app.extensions[CONTEXT_EXTENSION].keys.get(secret)
    return key if key is not None and key.active else None


# --- rate limits -----------------------------------------------------------------------------


def rate_limit_key() -> str:
    """What the limiter counts against: the key, or the caller's address without a working key."""
    key = _limited_key()
    if key is not None:
        return f"key:{key.id}"
    return f"addr:{request.remote_addr}"


def rate_limit_value() -> str:
    """The limit of the current caller: its key's own, the key default, or the anonymous one."""
    key = _limited_key()
    if key is not None:
        return key.rate_limit or current_app.config.get(CONFIG_KEY_LIMIT, KEY_LIMIT)
    return current_app.config.get(CONFIG_ANONYMOUS_LIMIT, ANONYMOUS_LIMIT)


class LazyExpiryMemoryStorage(MemoryStorage):
    """limits' in-process storage, minus a new timer thread on almost every hit.

    The stock storage starts a 10 ms threading.Timer to sweep expired counters whenever the last
    one has finished, which under steady load means a thread per request. Counters already
    expire when read, so sweeping inline at most once a second is enough.
    """

    STORAGE_SCHEME = ["citybrain-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer of the parent class
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()


def limiter_storage_uri(cache_url: str) -> str:
    """Redis when the app's cache is Redis (shared by every worker), else memory in the process."""
    if cache_url.startswith(("redis://", "rediss://")):
        return cache_url
    if cache_url.startswith("unix://"):
        return "redis+" + cache_url
    return "citybrain-memory://"


def make_limiter(server: Flask, cache_url: str) -> Limiter:
    """A limiter on `server`, registered after `identify` so it sees the request's key."""
    server.before_request(identify)
    limiter = Limiter(
        key_func=rate_limit_key,
        storage_uri=limiter_storage_uri(cache_url),
        strategy="sliding-window-counter",
        key_prefix="citybrain-api",
        headers_enabled=False,  # written by rate_limit_headers, with a Retry-After that is never 0
        # If Redis goes away, keep serving with per-process limits rather than failing requests.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.init_app(server)
    return limiter


def limit_blueprint(limiter: Limiter, blueprint) -> None:
    """Count every route of `blueprint` against one allowance per key, shared by both APIs."""
    limiter.shared_limit(rate_limit_value, scope="api", key_func=rate_limit_key)(blueprint)


def rate_limit_headers(limiter: Limiter, response: Response) -> Response:
    """X-RateLimit-Limit / -Remaining / -Reset on every API answer; Retry-After on a 429."""
    current = limiter.current_limit
    if current is None:
        return response
    reset_at = current.reset_at
    response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(max(current.remaining, 0))
    response.headers["X-RateLimit-Reset"] = str(int(reset_at))
    if response.status_code == 429:
        response.headers["Retry-After"] = str(_wait_seconds(current))
    return response


def _wait_seconds(current) -> int:
    """Whole seconds until the window resets: at least 1, and never more than the window itself (the
    limiter's reset time is rounded up to a whole second, which could otherwise say 61 of a minute)."""
    return min(current.limit.get_expiry(), max(1, math.ceil(current.reset_at - time.time())))


def too_many_requests(limiter: Limiter) -> ApiError:
    current = limiter.current_limit
    wait = _wait_seconds(current) if current is not None else 1
    return ApiError(429, "rate_limited", f"too many requests for this key; retry in {wait} s", retry_after=wait)
