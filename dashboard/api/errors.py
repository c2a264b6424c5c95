"""API errors: one exception carrying an HTTP status, a stable code and a one-line message, and the data layer's errors mapped to it."""

from __future__ import annotations

from typing import Any

from dashboard.observability.request_id import current_request_id
from data.errors import CityBrainError, Conflict, InvalidTransition, NotFound, ValidationError


class ApiError(Exception):
    """An answer other than success: `status` (HTTP), `code` (stable, for programs), `message` (for people), extra fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict:
        """The native API's error document: {"error": {"status", "code", "message", ..., "request_id"}}; the request id
        (also in the X-Request-ID header) is what to quote when asking an operator to find the request in the logs."""
        error = {"status": self.status, "code": self.code, "message": self.message, **self.extra}
        return {"error": error | {"request_id": current_request_id()}}


def bad_request(message: str, code: str = "bad_request", **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def forbidden(message: str, code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def from_data_error(exc: CityBrainError) -> ApiError:
    """The API answer for a typed error of the data layer (which has then written nothing)."""
    if isinstance(exc, NotFound):
        return not_found(str(exc))
    if isinstance(exc, InvalidTransition):
        return ApiError(409, "invalid_transition", str(exc), action=exc.action, current_state=exc.state)
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", str(exc), current_state=exc.current_state, current_version=exc.current_version)
    if isinstance(exc, ValidationError):
        return bad_request(str(exc), code="invalid")
    return ApiError(500, "error", str(exc))
