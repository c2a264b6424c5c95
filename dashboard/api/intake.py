"""Intake shared by both APIs: the process's grid locator, and turning API input into rows for data.incidents.intake.report_incidents."""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

from sqlalchemy.engine import Connection

from dashboard.api.errors import bad_request
from data.accounts.apikeys import ApiKey
from data.actors import Actor
from data.errors import CityBrainError, ValidationError
from data.geo.crs import gcj02_to_wgs84
from data.geo.locate import GridLocator
from data.incidents import lifecycle
from data.incidents.api_store import grid_fingerprint, parse_datetime
from data.incidents.intake import IntakeResult, report_incidents
from data.parse import parse_float, shown

# Fields a native API incident may carry (source comes from the key, never the body).
INPUT_FIELDS = (
    "external_id",
    "category_code",
    "priority",
    "description",
    "lon",
    "lat",
    "crs",
    "address",
    "reported_at",
    "media_url",
    "attributes",
)
CRS_NAMES = ("wgs84", "gcj02")  # GCJ-02: positions from Chinese web maps and phone apps
MAX_DESCRIPTION = 10_000
MAX_ADDRESS = 1_000
MAX_URL = 2_000


class LocatorCache:
    """One GridLocator per process, rebuilt when the grids change.

    Building one reads every grid (tens of milliseconds for 5,000), so requests share it; a cheap
    fingerprint query (count, largest id, newest update) runs at most every `check_seconds` to
    notice an import of new boundaries.
    """

    def __init__(self, check_seconds: float = 5.0):
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._locator: GridLocator | None = None
        self._fingerprint: tuple | None = None
        self._checked = -math.inf
        self.builds = 0

    def get(self, conn: Connection) -> GridLocator:
        with self._lock:
            now = time.monotonic()
            if self._locator is not None and now - self._checked < self.check_seconds:
                return self._locator
            fingerprint = grid_fingerprint(conn)
            if self._locator is None or fingerprint != self._fingerprint:
                self._locator = GridLocator.from_conn(conn)
                self._fingerprint = fingerprint
                self.builds += 1
            self._checked = now
            return self._locator


def actor_of(key: ApiKey) -> str:
    """Who the audit log says did it: the key's name (留痕)."""
    return f"api:{key.name}"[:128]


def acting_key(key: ApiKey) -> Actor:
    """A department's key acting on incidents, as the data layer's Actor: its name, unit and department, and only
    the actions a department may take (data/ checks them on the incident changed, as for a signed-in user)."""
    return Actor(actor_of(key), unit_id=key.unit_id, department_id=key.department_id, actions=lifecycle.DEPARTMENT_ACTIONS)


def unknown_category(code: Any, valid: list[str], index: int | None = None):
    where = "" if index is None else f"incident {index}: "
    return bad_request(
        f"{where}unknown category {code!r}; valid codes: {', '.join(valid) or '(none configured)'}",
        code="unknown_category",
        valid_codes=valid,
        **({} if index is None else {"index": index}),
    )


def check_position(lon: Any, lat: Any, where: str = "") -> tuple[float | None, float | None]:
    """(lon, lat) as numbers on the Earth, both None, or a 400: a half position or an impossible one is malformed.

    A position merely outside the city is fine: the incident is kept, flagged unlocated.
    """
    if lon is None and lat is None:
        return None, None
    if lon is None or lat is None:
        raise bad_request(f"{where}give both longitude and latitude, or neither", code="invalid")
    try:
        x, y = (parse_float(v, name, minimum=-1e9, maximum=1e9) for v, name in ((lon, "longitude"), (lat, "latitude")))
    except ValidationError:
        raise bad_request(
            f"{where}longitude and latitude must be numbers; got {shown(lon)}, {shown(lat)}", code="invalid"
        ) from None
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise bad_request(f"{where}({x}, {y}) is not a position on the Earth (longitude ±180, latitude ±90)", code="invalid")
    return x, y


def native_rows(items: list, key: ApiKey, category_ids: dict[str, int]) -> list[dict]:
    """report_incidents rows from native API incidents, or a 400 naming the first bad one (nothing stored)."""
    valid = sorted(category_ids)
    rows, gcj_rows = [], []
    for index, item in enumerate(items):
        where = f"incident {index}: " if len(items) > 1 else ""
        if not isinstance(item, dict):
            raise bad_request(f"{where}expected an object of fields, got {type(item).__name__}", code="invalid")
        unknown = sorted(set(item) - set(INPUT_FIELDS))
        if unknown:
            raise bad_request(f"{where}unknown field(s) {', '.join(unknown)}; allowed: {', '.join(INPUT_FIELDS)}", code="invalid")
        code = item.get("category_code")
        if not isinstance(code, str) or code.strip() not in category_ids:
            raise unknown_category(code, valid, index if len(items) > 1 else None)
        lon, lat = check_position(item.get("lon"), item.get("lat"), where)
        crs = item.get("crs", "wgs84")
        if crs not in CRS_NAMES:
            raise bad_request(f"{where}crs must be one of {', '.join(CRS_NAMES)}; got {crs!r}", code="invalid")
        external_id = item.get("external_id")
        if external_id is None:
            # Without an id of its own an incident cannot be recognised when sent again: only
            # an Idempotency-Key makes such a request safe to retry.
            external_id = uuid.uuid4().hex
        _check_text(item, where)
        reported_at = item.get("reported_at")
        if reported_at is not None:
            try:
                reported_at = parse_datetime(reported_at, f"{where}reported_at")
            except ValidationError as exc:
                raise bad_request(str(exc), code="invalid") from None
        row = {
            "source": key.source,
            "external_id": external_id,
            "category_id": category_ids[code.strip()],
            "priority": item.get("priority", 3),
            "description": item.get("description") or "",
            "lon": lon,
            "lat": lat,
            "address": item.get("address"),
            "reported_at": reported_at,
            "media_url": item.get("media_url"),
            "attributes": item.get("attributes"),
        }
        if row["reported_at"] is None:
            del row["reported_at"]  # report_incidents stamps it with the time of storing
        if crs == "gcj02" and lon is not None:
            gcj_rows.append(row)
        rows.append(row)
    if gcj_rows:
        lons, lats = gcj02_to_wgs84([r["lon"] for r in gcj_rows], [r["lat"] for r in gcj_rows])
        for row, x, y in zip(gcj_rows, lons.tolist(), lats.tolist(), strict=True):
            row["lon"], row["lat"] = x, y
    return rows


def _check_text(item: dict, where: str) -> None:
    limits = {"description": MAX_DESCRIPTION, "address": MAX_ADDRESS, "media_url": MAX_URL}
    for name, longest in limits.items():
        value = item.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise bad_request(f"{where}{name} must be text", code="invalid")
        if len(value) > longest:
            raise bad_request(f"{where}{name} is longer than {longest} characters", code="invalid")
    media_url = item.get("media_url")
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        raise bad_request(f"{where}media_url must be an http(s) link", code="invalid")


class _Pending:
    """One request's rows waiting to be written, and what became of them."""

    __slots__ = ("rows", "actor", "results", "error", "done")

    def __init__(self, rows: list[dict], actor: str):
        self.rows, self.actor = rows, actor
        self.results: list[IntakeResult] | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupWriter:
    """Writes the reports of concurrent requests in one transaction (group commit), each still all or nothing.

    Every intake transaction serialises on the change feed's lock (data.incidents.feed.lock_change_feed)
    until its commit, so one transaction per request caps throughput at one commit flush at a
    time. Here the first request to arrive writes at once; requests arriving meanwhile queue,
    and whichever finds the writer idle next takes the whole queue into one transaction. A
    lone request waits for nobody. If the shared transaction fails on one request's rows, each
    request is written again on its own, so a bad request never fails its neighbours.
    """

    def __init__(self, engine_of, locators: LocatorCache):
        self._engine_of = engine_of  # a callable: the engine may be swapped on the app's Deps
        self._locators = locators
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self.transactions = 0

    def submit(self, rows: list[dict], actor: str) -> list[IntakeResult]:
        """Store `rows` as `actor` (report_incidents); their results, or the error they alone caused."""
        item = _Pending(rows, actor)
        with self._cv:
            self._queue.append(item)
            while not item.done and self._writing:
                self._cv.wait()
            if not item.done:
                batch, self._queue, self._writing = self._queue, [], True
        if not item.done:
            try:
                self._write(batch)
            finally:
                with self._cv:
                    self._writing = False
                    self._cv.notify_all()
        if item.error is not None:
            raise item.error
        return item.results

    def _write(self, batch: list[_Pending]) -> None:
        try:
            self._transaction(batch)
        except CityBrainError as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
            else:
                for item in batch:
                    self._settle_error(item)
        except BaseException as exc:  # a database failure fails every request that shared it
            for item in batch:
                item.error, item.done = exc, True
        else:
            for item in batch:
                item.done = True

    def _settle_error(self, item: _Pending) -> None:
        try:
            self._transaction([item])
        except BaseException as exc:  # handed to the request's own thread, which raises it
            item.error = exc
        item.done = True

    def _transaction(self, batch: list[_Pending]) -> None:
        with self._engine_of().begin() as conn:
            locator = self._locators.get(conn)
            by_actor: dict[str, list[_Pending]] = {}
            for item in batch:
                by_actor.setdefault(item.actor, []).append(item)
            results: dict[int, list[IntakeResult]] = {}
            for actor, items in by_actor.items():
                rows = [row for item in items for row in item.rows]
                stored = report_incidents(conn, rows, actor=actor, locator=locator)
                start = 0
                for item in items:
                    results[id(item)] = stored[start : start + len(item.rows)]
                    start += len(item.rows)
        self.transactions += 1
        for item in batch:
            item.results = results[id(item)]
