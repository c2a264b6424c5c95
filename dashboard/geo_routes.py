"""Flask blueprint for map data: unit geometry, heat points and open-incident markers, never through Dash props.

Geometry URLs carry the units version (`?v=`), so a versioned answer is cached by the
browser for good and fetched once; live data (heat, markers) carries an ETag on the
change-feed head so an unchanged answer costs a 304.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from dashboard import jurisdiction
from dashboard.cache import cache
from data import store
from data.errors import NotFound, ValidationError
from data.geo import prepared
from data.parse import parse_optional_id
from layers import boundaries, heat, markers
from layers.scope import Scope, resolve_scope

log = logging.getLogger(__name__)

bp = Blueprint("geo", __name__, url_prefix="/geo")

# Versioned geometry never changes under its URL; unversioned answers must be revalidated.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def _deps():
    return current_app.extensions["citybrain"]


def _db_key() -> str:
    # Cache keys name the database, so two stores served by one process never share answers.
    return _deps().engine.url.render_as_string(hide_password=True)


@bp.errorhandler(ValidationError)
def _bad_request(exc: ValidationError):
    return jsonify(error=str(exc)), 400


# --- unit geometry ---------------------------------------------------------------------------


class _IndexCache:
    """The last few FeatureIndexes loaded, per process, one load per key at a time: a screen asking for a
    level the start-up warm-up is loading waits for that load instead of starting its own."""

    def __init__(self, size: int = 6):
        self.size = size
        self.items: OrderedDict[tuple, boundaries.FeatureIndex] = OrderedDict()
        self.lock = threading.Lock()
        self.loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, load: Callable[[], boundaries.FeatureIndex]) -> boundaries.FeatureIndex:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            flight = self.loading.setdefault(key, threading.Lock())
        with flight:  # outside the cache's lock: other levels load at the same time
            with self.lock:
                if key in self.items:
                    return self.items[key]
            index = load()
            with self.lock:
                self.items[key] = index
                self.loading.pop(key, None)
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
        return index


_indexes = _IndexCache()


def feature_index(engine, version: str, level: int) -> boundaries.FeatureIndex:
    """The FeatureIndex of `level` at units `version`: loaded from the store's prepared geometry (built there
    by the first process that needs it), then kept in this process."""
    key = (engine.url.render_as_string(hide_password=True), version, level)
    return _indexes.get(key, lambda: boundaries.FeatureIndex.of(prepared.prepared_level(engine, version, level)))


def warm(engine) -> threading.Thread:
    """Load every level's FeatureIndex in a background thread, so the first screen does not wait for it.

    Loading prepared geometry takes a fraction of a second even at 62,000 grids; only the first
    process after a boundary import simplifies (seconds), and every other one waits for its result.
    """

    def run():
        try:
            with store.reading(engine) as conn:
                version = boundaries.units_version(conn)
            for level in boundaries.MAP_LEVELS:
                feature_index(engine, version, level)
        except SQLAlchemyError as exc:  # the store is not reachable yet: the first request loads it
            log.warning("geometry warm-up skipped: %s", exc.__class__.__name__)

    thread = threading.Thread(target=run, name="citybrain-geometry-warm-up", daemon=True)
    thread.start()
    return thread


@cache.memoize(timeout=24 * 3600)
def _units_payload(db_key: str, version: str, level: int, bbox: tuple | None) -> bytes:
    """Gzipped GeoJSON of the units of `level` meeting `bbox`; the arguments are the whole cache key."""
    index = feature_index(_deps().engine, version, level)
    return boundaries.gzipped(boundaries.feature_collection(index.select(bbox)))


@bp.get("/units/<level_name>.json")
def units(level_name: str):
    """GeoJSON of one level's units (id, code, name_en, name_zh, parent_id), simplified, gzipped, ETagged."""
    try:
        level = boundaries.level_from_name(level_name)
    except ValidationError as exc:
        return jsonify(error=str(exc)), 404
    bbox = boundaries.parse_bbox(request.args.get("bbox"))
    with store.reading(_deps().engine) as conn:
        version = boundaries.units_version(conn)
    bbox_key = ",".join(f"{v:g}" for v in bbox) if bbox else "all"
    etag = _etag(version, level, bbox_key)
    cache_control = IMMUTABLE if request.args.get("v") == version else REVALIDATE
    if request.if_none_match.contains(etag):
        return _not_modified(etag, cache_control)
    body = _units_payload(_db_key(), version, level, bbox)
    response = _gzip_response(body, "application/geo+json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    response.headers["X-Units-Version"] = version
    return response


# --- live data: heat points and open-incident markers ------------------------------------------


def _live_context() -> tuple[int, datetime, Scope]:
    """(feed head, now to the next whole minute, scope from ?scope=) for a live-data request.

    Answers are cached per head and minute: a new event or a new minute makes a new answer.
    The minute is rounded up so an incident reported seconds ago is inside every window.
    """
    with store.reading(_deps().engine) as conn:
        head = store.feed_head(conn)
        # A scope outside the signed-in user's jurisdiction is not found; none asked means theirs.
        scope = resolve_scope(conn, jurisdiction.clamp_unit(conn, _int_arg("scope"), strict=True))
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return head, now, scope


def _int_arg(name: str) -> int | None:
    return parse_optional_id(request.args.get(name), f"{name} (a unit id)")


@cache.memoize(timeout=600)
def _heat_payload(db_key: str, head: int, now: datetime, window: str, cell: float, scope: Scope, bbox) -> dict:
    with store.reading(_deps().engine) as conn:
        cells = heat.heat_cells(conn, window, now, cell, scope=scope, bbox=bbox)
    return {**heat.heat_points(cells, cell), "window": window, "head": head}


@bp.get("/heat.json")
def heat_points():
    """Incidents of the last `window` (1h, 24h, 7d) as [lat, lon, weight] per `cell`, weighted by priority."""
    window = heat.parse_window(request.args.get("window"))
    cell = heat.parse_cell(request.args.get("cell"))
    bbox = boundaries.parse_bbox(request.args.get("bbox"))
    head, now, scope = _live_context()
    etag = _etag("heat", head, now, window, cell, scope.id, bbox)
    if request.if_none_match.contains(etag):
        return _not_modified(etag, REVALIDATE)
    return json_response(_heat_payload(_db_key(), head, now, window, cell, scope, bbox), etag=etag)


@cache.memoize(timeout=600)
def _markers_payload(db_key: str, head: int, now: datetime, scope: Scope, bbox) -> dict:
    with store.reading(_deps().engine) as conn:
        rows = markers.open_incidents(conn, now, bbox=bbox, scope=scope)
    return markers.marker_features(rows)


@bp.get("/incidents.json")
def open_incidents():
    """Open incidents in `bbox` (and `scope`) as GeoJSON points with priority and clock status."""
    bbox = boundaries.parse_bbox(request.args.get("bbox"))
    head, now, scope = _live_context()
    etag = _etag("markers", head, now, scope.id, bbox)
    if request.if_none_match.contains(etag):
        return _not_modified(etag, REVALIDATE)
    return json_response(_markers_payload(_db_key(), head, now, scope, bbox), etag=etag)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return jsonify(error=str(exc)), 404


# --- shared response helpers -------------------------------------------------------------------


def _etag(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:20]


def _not_modified(etag: str, cache_control: str) -> Response:
    response = Response(status=304)
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    return response


def _gzip_response(gzipped_body: bytes, mimetype: str) -> Response:
    """The body as sent: gzipped when the client accepts it (every browser does), plain otherwise."""
    if "gzip" in request.accept_encodings:
        response = Response(gzipped_body, mimetype=mimetype)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(gzip.decompress(gzipped_body), mimetype=mimetype)
    response.headers["Vary"] = "Accept-Encoding"
    return response


def json_response(payload, etag: str | None = None, cache_control: str = REVALIDATE) -> Response:
    """A JSON answer (orjson), gzipped when large, with an ETag when given."""
    body = orjson.dumps(payload)
    if len(body) > 2048:
        response = _gzip_response(boundaries.gzipped(body), "application/json")
    else:
        response = Response(body, mimetype="application/json")
    if etag:
        response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    return response
