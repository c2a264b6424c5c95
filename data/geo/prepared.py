"""Map geometry prepared once per units version and stored, so every process and server loads it instead of simplifying.

A `prepared_geometry` row holds one map level at one units version and level of detail: each unit's
id, bounding box and GeoJSON feature (simplified outline, names, parent and ancestors), serialised
once, packed and compressed. Whichever process needs a level first builds it; any other process that
asks meanwhile waits for it and reads what was stored. On PostgreSQL the builder holds an advisory
lock (the server releases it if the builder dies); on SQLite it holds a claim row that it fills in
when done, taken in a short write transaction so that a build never holds up intake, and taken over
when its builder's process has ended (or has been silent for CLAIM_SECONDS). Storing a version
prunes every other version.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import orjson
from sqlalchemy import Engine, and_, delete, or_, select, text, update
from sqlalchemy.engine import Connection

from data import deadlines, schema, store
from data.geo.units import SIMPLIFY_TOLERANCE, simplified_geojson, units_version
from data.times import from_db, utc_now

log = logging.getLogger(__name__)

P = schema.prepared_geometry
FORMAT = 1  # of the packed payload: a new layout is a new level of detail, so old rows are never misread
MAGIC = b"CBG1"
BUILD_LOCK = 727020  # PostgreSQL advisory lock class (store.migrate 727001, the change feed 727002)
BUILD_SECONDS = 600.0  # a build at 62,000 grids takes seconds; a connection waiting on one may be held this long
CLAIM_SECONDS = 300.0  # SQLite: a claim whose payload has not come after this is taken over (its builder died)
POLL_SECONDS = 0.1  # SQLite: how often a waiting process looks for the payload

# Ancestor ids every feature carries, besides id, code, names and parent_id: the map's style function
# dims what lies outside the scope without asking the server.
ANCESTOR_KEYS = ("district_id", "street_id", "community_id")


@dataclass(frozen=True)
class PreparedLevel:
    """One level's units, ready to serve: ids, bounding boxes (n x 4) and serialised GeoJSON features."""

    level: int
    ids: np.ndarray
    bboxes: np.ndarray
    fragments: list[bytes]
    version: str  # the units version it was built from
    builder: str  # host:pid of the process that built it


def this_process() -> str:
    """host:pid, as a stored row names its builder."""
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def detail_for(level: int) -> str:
    """The level of detail a level is prepared at: its simplification tolerance and the payload format."""
    return f"{SIMPLIFY_TOLERANCE.get(int(level), 1e-5):g}/{FORMAT}"


# --- building --------------------------------------------------------------------------------


def unit_facts(conn: Connection, level: int) -> dict[int, dict]:
    """Each unit's bounding box and ancestors by id (stored columns, no geometry decoding)."""
    u = schema.units
    rows = conn.execute(
        select(u.c.id, u.c.minx, u.c.miny, u.c.maxx, u.c.maxy, *(u.c[key] for key in ANCESTOR_KEYS)).where(u.c.level == level)
    )
    return {
        int(r.id): {"bbox": (r.minx, r.miny, r.maxx, r.maxy), **{key: getattr(r, key) for key in ANCESTOR_KEYS}} for r in rows
    }


def serialise(collection: dict, facts: Mapping[int, Mapping]) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """(ids, bounding boxes, features serialised with their ancestors) of a FeatureCollection
    (simplified_geojson) and unit_facts() by id."""
    features = collection.get("features", [])
    ids = np.array([int(f["properties"]["id"]) for f in features], dtype=np.int64)
    boxes = np.array([facts[int(i)]["bbox"] for i in ids], dtype=float).reshape(-1, 4)
    fragments = []
    for feature in features:
        fact = facts[int(feature["properties"]["id"])]
        feature["properties"].update({key: fact.get(key) for key in ANCESTOR_KEYS})
        # Serialised once here; each request then only joins bytes.
        fragments.append(orjson.dumps(feature))
    return ids, boxes, fragments


def build_level(conn: Connection, level: int) -> PreparedLevel:
    """Simplify and serialise one level's units as the store has them now (the slow part: seconds at 62,000 grids)."""
    started = time.perf_counter()
    collection = simplified_geojson(conn, level)
    ids, boxes, fragments = serialise(collection, unit_facts(conn, level))
    # Read after the units: when it equals the version the caller saw before, these are that version's units.
    version = units_version(conn)
    log.info("map geometry of level %s simplified: %d units in %.2f s", level, len(ids), time.perf_counter() - started)
    return PreparedLevel(int(level), ids, boxes, fragments, version, this_process())


# --- the stored payload ------------------------------------------------------------------------


def pack(ids: np.ndarray, bboxes: np.ndarray, fragments: list[bytes]) -> bytes:
    """Ids, boxes and features as one compressed blob: a header, three arrays, then the features end to end."""
    lengths = np.fromiter((len(f) for f in fragments), dtype="<u4", count=len(fragments))
    raw = b"".join(
        (
            MAGIC,
            struct.pack("<I", len(fragments)),
            np.asarray(ids, dtype="<i8").tobytes(),
            np.asarray(bboxes, dtype="<f8").reshape(-1, 4).tobytes(),
            lengths.tobytes(),
            *fragments,
        )
    )
    return zlib.compress(raw, 1)  # fast both ways; the features are sent gzipped anyway


def unpack(payload: bytes) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """The inverse of pack."""
    raw = zlib.decompress(payload)
    if raw[:4] != MAGIC:
        raise ValueError("not a prepared geometry payload")
    (n,) = struct.unpack_from("<I", raw, 4)
    at = 8
    ids = np.frombuffer(raw, dtype="<i8", count=n, offset=at).astype(np.int64)
    at += 8 * n
    boxes = np.frombuffer(raw, dtype="<f8", count=4 * n, offset=at).reshape(n, 4).astype(float)
    at += 32 * n
    lengths = np.frombuffer(raw, dtype="<u4", count=n, offset=at)
    at += 4 * n
    ends = (at + np.cumsum(lengths, dtype=np.int64)).tolist()
    starts = [at, *ends[:-1]] if ends else []  # a level with no units packs no features
    return ids, boxes, [raw[s:e] for s, e in zip(starts, ends, strict=True)]


def _key(version: str, level: int):
    return and_(P.c.units_version == version, P.c.level == int(level), P.c.detail == detail_for(level))


def _stored(conn: Connection, version: str, level: int) -> PreparedLevel | None:
    row = conn.execute(select(P.c.payload, P.c.builder).where(_key(version, level), P.c.payload.is_not(None))).first()
    if row is None:
        return None
    ids, boxes, fragments = unpack(row.payload)
    return PreparedLevel(int(level), ids, boxes, fragments, version, row.builder)


def _row_values(built: PreparedLevel, build_ms: int) -> dict:
    return {
        "payload": pack(built.ids, built.bboxes, built.fragments),
        "features": len(built.fragments),
        "builder": built.builder,
        "built_at": utc_now(),
        "build_ms": build_ms,
    }


def prune(conn: Connection, version: str, level: int) -> int:
    """Delete the rows of every other units version, and of this level at another level of detail."""
    gone = conn.execute(
        delete(P).where(or_(P.c.units_version != version, and_(P.c.level == int(level), P.c.detail != detail_for(level))))
    )
    return gone.rowcount or 0


# --- get or build, once across processes -----------------------------------------------------------

_local_locks: dict[tuple, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def prepared_level(engine: Engine, version: str, level: int) -> PreparedLevel:
    """`level`'s prepared geometry at units `version`: read from the store, or built and stored by the
    first process to ask while the others wait for it. When the units changed meanwhile the answer is
    the newer units', and nothing is stored under the old version."""
    key = (id(engine), version, int(level))
    with _local_locks_guard:
        local = _local_locks.setdefault(key, threading.Lock())
    try:
        with local:  # threads sharing an engine wait for each other here, not in the store
            return _get_or_build(engine, version, level)
    finally:
        with _local_locks_guard:
            if not local.locked():
                _local_locks.pop(key, None)


def _get_or_build(engine: Engine, version: str, level: int) -> PreparedLevel:
    with store.reading(engine) as conn:
        found = _stored(conn, version, level)
    if found is not None:
        return found
    with deadlines.time_limit(BUILD_SECONDS):
        if store.is_sqlite(engine):
            return _sqlite_get_or_build(engine, version, level)
        return _postgresql_get_or_build(engine, version, level)


def _postgresql_get_or_build(engine: Engine, version: str, level: int) -> PreparedLevel:
    lock_args = {"k": BUILD_LOCK, "name": f"{version}/{level}/{detail_for(level)}"}
    lock_key = "(:k, hashtext(current_schema() || '/' || :name))"
    with engine.begin() as conn:
        if not conn.execute(text(f"SELECT pg_try_advisory_xact_lock{lock_key}"), lock_args).scalar():
            log.info("map geometry of level %s is being built by another process: waiting for it", level)
            conn.execute(text(f"SELECT pg_advisory_xact_lock{lock_key}"), lock_args)
        found = _stored(conn, version, level)  # read committed: sees what the lock's last holder stored
        if found is not None:
            return found
        started = time.perf_counter()
        built = build_level(conn, level)
        if built.version == version:
            values = _row_values(built, round(1000 * (time.perf_counter() - started)))
            conn.execute(P.insert().values(units_version=version, level=int(level), detail=detail_for(level), **values))
            prune(conn, version, level)
        return built


def _sqlite_get_or_build(engine: Engine, version: str, level: int) -> PreparedLevel:
    told = False
    while True:
        with store.reading(engine) as conn:
            row = conn.execute(
                select(P.c.builder, P.c.built_at, P.c.payload.is_not(None).label("done")).where(_key(version, level))
            ).first()
            if row is not None and row.done:
                return _stored(conn, version, level)
        if row is None or _abandoned(row):
            if _claim(engine, version, level, row):
                return _build_claimed(engine, version, level)
            continue  # another process claimed it first
        if not told:
            log.info("map geometry of level %s is being built by %s: waiting for it", level, row.builder)
            told = True
        time.sleep(POLL_SECONDS)


def _abandoned(claim) -> bool:
    """Whether a claim's builder is gone: a process of this host that no longer runs (a server stopped
    mid-build), or any builder silent for CLAIM_SECONDS."""
    if utc_now() - from_db(claim.built_at) > timedelta(seconds=CLAIM_SECONDS):
        return True
    host, _, pid = claim.builder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def _claim(engine: Engine, version: str, level: int, seen) -> bool:
    """Claim the build (a row without payload, in a short write transaction); False when another process has."""
    me = this_process()
    with engine.begin() as conn:
        row = conn.execute(select(P.c.builder, P.c.built_at).where(_key(version, level))).first()
        if row is None:
            conn.execute(
                P.insert().values(
                    units_version=version, level=int(level), detail=detail_for(level), features=0, builder=me, built_at=utc_now()
                )
            )
            return True
        if seen is not None and (row.builder, from_db(row.built_at)) == (seen.builder, from_db(seen.built_at)):
            # The same stale claim as seen: its builder is gone, take it over.
            conn.execute(update(P).where(_key(version, level), P.c.payload.is_(None)).values(builder=me, built_at=utc_now()))
            return True
        return False


def _build_claimed(engine: Engine, version: str, level: int) -> PreparedLevel:
    started = time.perf_counter()
    try:
        with store.reading(engine) as conn:  # one snapshot: the units and their version agree
            built = build_level(conn, level)
    except BaseException:
        with engine.begin() as conn:  # let a waiting process build it instead of waiting for the claim to age
            conn.execute(delete(P).where(_key(version, level), P.c.payload.is_(None), P.c.builder == this_process()))
        raise
    with engine.begin() as conn:
        if built.version == version:
            values = _row_values(built, round(1000 * (time.perf_counter() - started)))
            conn.execute(update(P).where(_key(version, level), P.c.payload.is_(None)).values(**values))
            prune(conn, version, level)
        else:  # the units changed while this was built: the claim is for a version nobody will ask for again
            conn.execute(delete(P).where(_key(version, level), P.c.payload.is_(None)))
    return built
