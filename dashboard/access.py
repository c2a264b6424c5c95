"""Who is asking and what they may do: permissions, the role, page and area tables, principals, the request's principal.

The gate (dashboard/auth.py) enforces these on every request; pages, components and callbacks read them to
show only what the signed-in principal may use. Jurisdiction (the user's unit) is applied by the reads
through dashboard/jurisdiction.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import has_request_context
from flask_login import AnonymousUserMixin, current_user

from dashboard import auth_text  # noqa: F401  (registers the sign-in strings with i18n)
from data.actors import Actor

# --- permissions --------------------------------------------------------------------------------

PUBLIC = "public"  # no sign-in at all
API = "api"  # the API blueprints: their own key checks, no session, no CSRF
SIGNED_IN = "signed_in"  # any principal
VIEW = "view"  # overview, wall, map data, live feed (read, within the jurisdiction)
DESK = "desk"  # open the dispatch desk (read)
DISPATCH = "dispatch"  # every dispatch-desk action
ACT = "act"  # acknowledge, return, resolve for the user's own department
INBOX = "inbox"  # department inboxes
TRENDS = "trends"  # the leaders' review and its exports
ADMIN = "admin"  # administration; also what anything unlisted needs

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({SIGNED_IN, VIEW}),
    "dispatcher": frozenset({SIGNED_IN, VIEW, DESK, DISPATCH, INBOX}),
    "department": frozenset({SIGNED_IN, VIEW, DESK, ACT, INBOX}),
    "leader": frozenset({SIGNED_IN, VIEW, DESK, INBOX, TRENDS}),
    "admin": frozenset({SIGNED_IN, VIEW, DESK, DISPATCH, ACT, INBOX, TRENDS, ADMIN}),
}
KIOSK_PERMISSIONS = frozenset({SIGNED_IN, VIEW})
# What a department user may do on its own department's incidents (DISPATCH holders may do all).
DEPARTMENT_ACTIONS = frozenset({"acknowledge", "return", "resolve", "note"})

# Every path the shell routes to a page (dashboard/pages.PAGES renders exactly these), and each page's
# permission: pages not listed in PAGE_PERMISSIONS need ADMIN.
PAGE_PATHS = frozenset({"/", "/wall", "/dispatch", "/trends", "/inbox", "/admin", "/warnings"})
PAGE_PERMISSIONS: dict[str, str] = {
    "/": VIEW,
    "/wall": VIEW,
    "/dispatch": DESK,
    "/inbox": INBOX,
    "/trends": TRENDS,
}
# Component-id areas (`<area>-<thing>`) a Dash callback writes to -> permission. Unlisted: ADMIN.
AREA_PERMISSIONS: dict[str, str] = {
    "shell": SIGNED_IN,
    "overview": VIEW,
    "dispatch": DESK,
    "inbox": INBOX,
    "trends": TRENDS,
    "admin": ADMIN,
}


def requires(permission: str):
    """Decorator for a Flask view: the permission it needs (checked by the gate before it runs)."""

    def mark(view):
        view.citybrain_permission = permission
        return view

    return mark


def allow_page(path: str, permission: str) -> None:
    """Declare the permission a page (a path the shell routes) needs."""
    PAGE_PERMISSIONS[path] = permission


def allow_area(area: str, permission: str) -> None:
    """Declare the permission a Dash callback writing to components `<area>-...` needs."""
    AREA_PERMISSIONS[area] = permission


# --- principals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is signed in: a user or a wall's kiosk token, with role, permissions and jurisdiction."""

    session_id: str
    name: str  # the user name (the audit log's actor) or "kiosk:<label>"
    display_name: str
    role: str
    unit_id: int | None
    unit_level: int | None
    department_id: int | None
    is_kiosk: bool = False
    permissions: frozenset[str] = field(default_factory=frozenset)

    # Flask-Login's user interface
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.session_id

    def can(self, permission: str) -> bool:
        return permission == PUBLIC or permission in self.permissions

    @property
    def scope(self) -> tuple[int, int] | None:
        """The jurisdiction as a metrics scope: None (the city) or (level, unit id)."""
        return None if self.unit_id is None else (self.unit_level, self.unit_id)

    @property
    def actor(self) -> str:
        """The name the audit log records for this principal's actions."""
        return self.name


class Anonymous(AnonymousUserMixin):
    """Nobody signed in: holds no permission but PUBLIC."""

    name = "anonymous"
    role = None
    unit_id = None
    unit_level = None
    department_id = None
    is_kiosk = False
    permissions = frozenset()
    scope = None

    def can(self, permission: str) -> bool:
        return permission == PUBLIC


def session_id_for(session_key: str | None, fallback: str) -> str:
    """The id Flask-Login keeps in the cookie: `s:` and the key of the session's row in the store
    (data/accounts/sessions.py). Without a key (a principal made in a test's request context) the
    fallback names the user or kiosk, and no request is ever let in by it."""
    return f"s:{session_key}" if session_key else fallback


def principal_for_user(user: dict, session_key: str | None = None) -> Principal:
    return Principal(
        session_id=session_id_for(session_key, f"u:{user['id']}:{user['session_version']}"),
        name=user["username"],
        display_name=user["display_name"] or user["username"],
        role=user["role"],
        unit_id=user["unit_id"],
        unit_level=user["unit_level"],
        department_id=user["department_id"],
        permissions=ROLE_PERMISSIONS[user["role"]],
    )


def principal_for_kiosk(token: dict, session_key: str | None = None) -> Principal:
    return Principal(
        session_id=session_id_for(session_key, f"k:{token['id']}"),
        name=f"kiosk:{token['label']}",
        display_name=token["label"],
        role="kiosk",
        unit_id=token["unit_id"],
        unit_level=token["unit_level"],
        department_id=None,
        is_kiosk=True,
        permissions=KIOSK_PERMISSIONS,
    )


def current() -> Principal | Anonymous:
    """The principal of this request (Anonymous outside a request or when nobody is signed in)."""
    if not has_request_context():
        return Anonymous()
    return current_user._get_current_object()


def actor() -> str:
    """The audit log's actor for this request: the signed-in user's name."""
    who = current()
    if not who.is_authenticated:
        raise PermissionError("nobody is signed in")
    return who.actor


def acting() -> Actor:
    """This request's principal as the data layer's Actor: its name, jurisdiction, department (a department
    user's only) and the incident actions its role allows, which data/ checks on the rows it changes."""
    who = current()
    if not who.is_authenticated:
        raise PermissionError("nobody is signed in")
    if who.can(DISPATCH):
        actions = None
    elif who.can(ACT):
        actions = DEPARTMENT_ACTIONS
    else:
        actions = frozenset()
    department = who.department_id if who.role == "department" else None
    return Actor(who.actor, unit_id=who.unit_id, department_id=department, actions=actions)


def can(permission: str) -> bool:
    """Whether this request's principal holds `permission` (always, outside a request: the CLI and
    plain-function tests; every request passed the gate, and callbacks run inside one)."""
    return current().can(permission) if has_request_context() else True


def page_permission(path: str | None) -> str:
    """The permission a page needs: declared, else ADMIN; a path that is no page only needs a sign-in
    (the shell shows it as not found)."""
    path = (path or "/").rstrip("/") or "/"
    if path not in PAGE_PATHS:
        return PAGE_PERMISSIONS.get(path, SIGNED_IN)
    return PAGE_PERMISSIONS.get(path, ADMIN)


def may_open(path: str | None) -> bool:
    """Whether this request's principal may open the page at `path` (the nav hides what it may not)."""
    return can(page_permission(path))
