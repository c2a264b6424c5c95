"""Typed errors raised by the data layer and turned into messages by the UI and API."""


class CityBrainError(Exception):
    """Base class: every error the data layer raises on purpose."""


class NotFound(CityBrainError):
    """The thing asked for does not exist (or is outside the caller's reach)."""


class ValidationError(CityBrainError):
    """Input that cannot be used: a bad file, an unknown category, a wrong coordinate."""


class InvalidTransition(CityBrainError):
    """The action is not allowed in the incident's current state."""

    def __init__(self, action: str, state: str, message: str | None = None):
        self.action, self.state = action, state
        super().__init__(message or f"cannot {action} an incident that is {state}")


class Conflict(CityBrainError):
    """Somebody else changed the incident first (stale version) or a duplicate key."""

    def __init__(self, message: str, current_state: str | None = None, current_version: int | None = None):
        self.current_state, self.current_version = current_state, current_version
        super().__init__(message)


class LateClick(Conflict):
    """A desk click that reached the store too long after it was made: not acted on, whatever the case's state."""

    def __init__(self, message: str, age_seconds: float, current_state: str | None = None, current_version: int | None = None):
        self.age_seconds = age_seconds
        super().__init__(message, current_state, current_version)


class AuthenticationFailed(CityBrainError):
    """Wrong user name or password, or an inactive account (the message never says which)."""


class SignInThrottled(AuthenticationFailed):
    """Too many wrong passwords for this user name from this address: refused until `until`."""

    def __init__(self, message: str, until):
        self.until = until
        super().__init__(message)


class PermissionDenied(CityBrainError):
    """The signed-in user's role or jurisdiction does not allow this."""


class StoreUnavailable(CityBrainError):
    """The store cannot be reached or did not answer in time: a 503 to retry, never a sign-out."""
