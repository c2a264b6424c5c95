"""The intake API: Open311 GeoReport v2 at /open311/v2 and the native JSON API at /api/v1, with keys, rate limits and errors.

`register_api(server, deps)` is the one call the app factory (dashboard/server.py build_app) makes; everything else is wired here.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, request
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from dashboard.api import open311, v1
from dashboard.api.context import EXTENSION, ApiContext, api_context
from dashboard.api.errors import ApiError, from_data_error
from dashboard.api.keys import limit_blueprint, make_limiter, rate_limit_headers, too_many_requests
from dashboard.api.wire import json_error
from data.errors import CityBrainError

log = logging.getLogger(__name__)

__all__ = ["register_api", "as_api_error"]

# The whole app accepts bodies up to this (the API's own routes allow far less, per request).
APP_MAX_CONTENT_LENGTH = 32 * 1024 * 1024


def as_api_error(exc: Exception) -> ApiError:
    """Any exception raised while answering an API request, as the ApiError to send."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RateLimitExceeded):
        return too_many_requests(api_context().limiter)
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        accepted = f"the {limit:,} bytes" if limit else "what"
        return ApiError(413, "too_large", f"the body is larger than {accepted} this API accepts")
    if isinstance(exc, HTTPException):
        code = re.sub(r"[^a-z]+", "_", (exc.name or "error").lower()).strip("_")
        return ApiError(exc.code or 500, code, exc.description or exc.name or "error")
    if isinstance(exc, CityBrainError):
        return from_data_error(exc)
    if isinstance(exc, OperationalError):
        log.warning("API request failed, store unreachable: %s", exc.__class__.__name__)
        return ApiError(503, "store_unavailable", "the store cannot be reached just now; try again shortly")
    log.exception("API request failed")
    return ApiError(500, "internal_error", "the server failed to answer this request; the error is logged")


def _v1_error(exc: Exception):
    return json_error(as_api_error(exc))


def _open311_error(exc: Exception):
    return open311.error_response(as_api_error(exc))


def _rate_limit_headers(response):
    return rate_limit_headers(api_context().limiter, response)


def _reject_nul_arguments():
    # PostgreSQL text cannot hold NUL: refuse it at the door rather than fail in the database.
    if any("\x00" in value for values in request.args.listvalues() for value in values):
        raise ApiError(400, "invalid", "query parameters must not contain NUL characters")


# Blueprint handlers are copied into each app when it registers them, so they are set once, here.
for _bp, _handler in ((v1.bp, _v1_error), (open311.bp, _open311_error)):
    _bp.register_error_handler(Exception, _handler)
    _bp.after_request(_rate_limit_headers)
    _bp.before_request(_reject_nul_arguments)


def _routing_errors(exc: HTTPException):
    """Unknown paths and methods under the API prefixes answer in the API's format; the rest of the app is untouched."""
    if exc.code is None or exc.code < 400:
        return exc
    if request.path.startswith(v1.bp.url_prefix + "/"):
        return _v1_error(exc)
    if request.path.startswith(open311.bp.url_prefix + "/"):
        return _open311_error(exc)
    return exc


def register_api(server: Flask, deps) -> ApiContext:
    """Mount both APIs on `server` with keys, per-key rate limits (Redis when the cache is Redis) and body limits."""
    if server.config.get("MAX_CONTENT_LENGTH") is None:
        server.config["MAX_CONTENT_LENGTH"] = APP_MAX_CONTENT_LENGTH
    limiter = make_limiter(server, deps.settings.cache_url)
    context = ApiContext(deps=deps, limiter=limiter)
    server.extensions[EXTENSION] = context
    for blueprint in (v1.bp, open311.bp):
        limit_blueprint(limiter, blueprint)
        server.register_blueprint(blueprint)
    server.register_error_handler(HTTPException, _routing_errors)
    return context
