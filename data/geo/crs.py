"""Coordinate systems: GCJ-02 <-> WGS84 (vectorised), CRS parsing, equal-area and local metric projections."""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import pyproj
import shapely
from pyproj.exceptions import CRSError

from data.errors import ValidationError
from data.parse import ascii_digits

WGS84 = pyproj.CRS.from_epsg(4326)
GCJ02 = "gcj02"

# Krasovsky 1940 ellipsoid, which the GCJ-02 offset formulas are defined on.
_A = 6378245.0
_EE = 0.00669342162296594323

# GCJ-02 is only applied inside this rough box around mainland China; outside it is WGS84.
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS84 positions (lon, lat)."""
    x, y = lon - 105.0, lat - 35.0
    pi = np.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


def in_china(lon, lat) -> np.ndarray:
    """Whether each position lies in the box where Chinese web maps apply the GCJ-02 offset."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat arrays -> GCJ-02 (positions outside China are returned unchanged)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon, lat, tolerance_deg: float = 1e-10, max_iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 lon/lat arrays -> WGS84, inverting the offset by fixed-point iteration.

    The forward offset varies slowly (a few metres per kilometre), so each step cuts the
    error by about a thousand; a handful of steps reaches well under a millimetre.
    """
    gcj_lon, gcj_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wgs_lon, wgs_lat = gcj_lon.copy(), gcj_lat.copy()
    for _ in range(max_iterations):
        fwd_lon, fwd_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
        err_lon, err_lat = fwd_lon - gcj_lon, fwd_lat - gcj_lat
        wgs_lon -= err_lon
        wgs_lat -= err_lat
        if np.nanmax(np.abs(err_lon), initial=0.0) < tolerance_deg and np.nanmax(np.abs(err_lat), initial=0.0) < tolerance_deg:
            break
    return wgs_lon, wgs_lat


def _gcj02_coords_to_wgs84(coords: np.ndarray) -> np.ndarray:
    lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def _wgs84_coords_to_gcj02(coords: np.ndarray) -> np.ndarray:
    lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def geometries_gcj02_to_wgs84(geoms):
    """Every coordinate of the geometries moved from GCJ-02 to WGS84 (one vectorised pass)."""
    return shapely.transform(geoms, _gcj02_coords_to_wgs84)


def geometries_wgs84_to_gcj02(geoms):
    """Every coordinate of the geometries moved from WGS84 to GCJ-02 (for tests and exports)."""
    return shapely.transform(geoms, _wgs84_coords_to_gcj02)


def parse_crs(value) -> pyproj.CRS | str:
    """A pyproj CRS for 'EPSG:4547', '4547', a WKT or PROJ string; the string 'gcj02' for GCJ-02."""
    if isinstance(value, pyproj.CRS):
        return value
    text = str(value).strip()
    if text.lower().replace("-", "").replace("_", "") in {"gcj02", "gcj", "mars"}:
        return GCJ02
    if ascii_digits(text):
        text = f"EPSG:{text}"
    try:
        return pyproj.CRS.from_user_input(text)
    except CRSError:
        raise ValidationError(f"unknown CRS {value!r}: give EPSG:xxxx (e.g. EPSG:4547) or gcj02") from None


def _transformer(source: str, target: str) -> pyproj.Transformer:
    # A PROJ transformer must not be shared between threads (the dashboard serves from several).
    return _thread_transformer(source, target, threading.get_ident())


@lru_cache(maxsize=128)
def _thread_transformer(source: str, target: str, _thread_id: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _transform_with(transformer: pyproj.Transformer, geoms):
    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply)


# EASE-Grid 2.0 global is a cylindrical equal-area projection: areas come out in true m²
# anywhere on Earth, so one cached transformer serves every unit.
EQUAL_AREA = "EPSG:6933"


def areas_m2(geoms) -> np.ndarray:
    """Areas in square metres of WGS84 geometries (through an equal-area projection, not degrees)."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return np.zeros(0)
    projected = _transform_with(_transformer("EPSG:4326", EQUAL_AREA), geoms)
    return shapely.area(projected)


def local_metric_crs(lon: float, lat: float) -> str:
    """A Lambert azimuthal equal-area projection centred on (lon, lat): metres, true areas, tiny distortion city-wide."""
    return f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"


def to_crs(geoms, source: str, target: str):
    """Geometries reprojected from `source` to `target` (CRS strings), vectorised."""
    return _transform_with(_transformer(source, target), geoms)
