"""The demo's departments, incident categories and time limits, with how fast and how well each department works.

Limits follow the reference figures in DOMAIN.md (road cleanliness 2 h, exposed garbage 4 h to a
day, standing water 4 h, emergencies on site in 30 minutes, utilities 24 h, general requests
7 days, complex ones 15 days, illegal construction 15-20 days). The behaviour figures are the
demo's own: some departments are slow to acknowledge (吹哨不到) and some often fail
verification (人到无效), so that the department board has something to show.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from data import schema


@dataclass(frozen=True)
class Department:
    """A department (or utility) and how it answers the whistle.

    ack_share and handle_share are its median acknowledge / handling time as a share of the
    limit; ack_sigma spreads the acknowledge times (a wide spread means many late ones);
    verify_fail is the share of its resolutions rejected at verification (人到无效).
    """

    code: str
    name_en: str
    name_zh: str
    kind: str
    ack_share: float
    ack_sigma: float
    handle_share: float
    verify_fail: float
    satisfaction_bias: float = 0.0


# How a full-time grid worker (专职网格员) behaves when a matter is pushed down to them.
GRID_WORKER = Department("grid", "Grid worker", "网格员", "worker", 0.2, 0.7, 0.3, 0.04, 0.2)

DEPARTMENTS = (
    Department("cgj", "City Management Bureau", "城市管理局", "department", 0.3, 0.7, 0.45, 0.13),
    Department("zjw", "Housing and Urban-Rural Development Commission", "住房城乡建委", "department", 0.7, 0.95, 0.6, 0.06, -0.2),
    Department("gaj", "Public Security Bureau", "公安分局", "department", 0.15, 0.6, 0.35, 0.03),
    Department("xfj", "Fire and Rescue Brigade", "消防救援支队", "department", 0.12, 0.5, 0.3, 0.02, 0.2),
    Department("scjg", "Market Regulation Administration", "市场监督管理局", "department", 0.35, 0.7, 0.5, 0.05),
    Department("sthj", "Ecology and Environment Bureau", "生态环境局", "department", 0.4, 0.7, 0.6, 0.16, -0.2),
    Department("mzj", "Civil Affairs Bureau", "民政局", "department", 0.3, 0.6, 0.4, 0.03, 0.1),
    Department("sfj", "Justice Bureau", "司法局", "department", 0.4, 0.7, 0.55, 0.05),
    Department("jtj", "Transport Bureau", "交通运输局", "department", 0.65, 0.95, 0.7, 0.08, -0.3),
    Department("swj", "Water Affairs Bureau", "水务局", "department", 0.35, 0.7, 0.5, 0.06),
    Department("wjw", "Health Commission", "卫生健康委", "department", 0.35, 0.7, 0.45, 0.04),
    Department("yjj", "Emergency Management Bureau", "应急管理局", "department", 0.15, 0.6, 0.4, 0.04),
    Department("rsj", "Human Resources and Social Security Bureau", "人力社保局", "department", 0.55, 0.8, 0.75, 0.1, -0.3),
    Department("zzb", "Organisation Department (Party Building)", "区委组织部", "department", 0.4, 0.7, 0.4, 0.03),
    Department("power", "State Grid Chongqing Electric Power", "国网重庆电力", "utility", 0.2, 0.6, 0.4, 0.03),
    Department("gas", "Chongqing Gas Group", "重庆燃气集团", "utility", 0.15, 0.6, 0.35, 0.03),
)  # fmt: skip
DEPARTMENTS_BY_CODE = {d.code: d for d in DEPARTMENTS}

# Time limit profiles: priority -> (acknowledge minutes, handling minutes), counted from dispatch.
RAPID = {1: (10, 60), 2: (15, 120), 3: (30, 240)}  # road cleanliness: 2 working hours
GARBAGE = {1: (15, 120), 2: (30, 240), 3: (60, 1440)}  # exposed garbage: 4 h to 1 working day
WATER = {1: (10, 120), 2: (20, 240), 3: (30, 480)}  # standing water: 4 working hours
EMERGENCY = {1: (10, 120), 2: (15, 480), 3: (30, 1440)}  # collapse, manhole cover: crew on site in 30 min
UTILITY = {1: (15, 240), 2: (30, 720), 3: (60, 1440)}  # 12345 utilities: 24 h
ROAD = {1: (30, 480), 2: (60, 1440), 3: (120, 4320)}
GENERAL = {1: (30, 1440), 2: (120, 4320), 3: (240, 10080)}  # 12345 general requests: 7 days
COMPLEX = {1: (60, 2880), 2: (240, 10080), 3: (1440, 21600)}  # 12345 complex requests: 15 days
CONSTRUCTION = {1: (30, 240), 2: (60, 10080), 3: (240, 28800)}  # stop works in 4 h; demolish in 15-20 days
GREEN = {1: (60, 1440), 2: (240, 4320), 3: (480, 10080)}  # green-space upkeep: 5 working days

SOURCES = ("patrol", "12345", "app", "iot", "video")
_CITIZEN = (0.35, 0.45, 0.2, 0.0, 0.0)
_STREET = (0.45, 0.25, 0.15, 0.0, 0.15)
_SENSED = (0.3, 0.4, 0.15, 0.15, 0.0)
_NORMAL = (0.05, 0.25, 0.7)
_HIGH = (0.15, 0.45, 0.4)
_URGENT = (0.6, 0.3, 0.1)


@dataclass(frozen=True)
class Category:
    """An incident category: its sector, responsible department (职责清单), limits and how common it is.

    weight is its share of reports; night is how much more often it is reported at night
    (noise); rain is how much more often on a rainy day (standing water, landslips).
    """

    code: str
    name_en: str
    name_zh: str
    sector: str
    department: str
    grid_worker_ok: bool
    limits: dict
    weight: float
    priorities: tuple = _NORMAL
    sources: tuple = _CITIZEN
    night: float = 1.0
    rain: float = 1.0


CATEGORIES = (
    # 党的建设 party building
    Category("party_member_service", "Party member service request", "党员服务诉求", "party", "zzb", True, GENERAL, 1.0, sources=(0.7, 0.2, 0.1, 0, 0)),
    Category("party_service_centre", "Party-community service centre facilities", "党群服务中心设施", "party", "zzb", True, GREEN, 0.6, sources=(0.7, 0.2, 0.1, 0, 0)),
    Category("volunteer_request", "Volunteer service request", "志愿服务需求", "party", "mzj", True, GENERAL, 1.2, sources=(0.6, 0.2, 0.2, 0, 0)),
    Category("official_conduct", "Conduct of grassroots officials", "基层干部作风反映", "party", "zzb", False, COMPLEX, 0.4, sources=(0.0, 0.8, 0.2, 0, 0)),
    # 经济发展 economic development
    Category("street_vending", "Street vending and road occupation", "占道经营", "economy", "cgj", True, RAPID, 7.0, sources=_STREET, night=1.3),
    Category("illegal_advertising", "Illegal advertising and flyposting", "违规广告与小广告", "economy", "cgj", True, GARBAGE, 3.0, sources=_STREET),
    Category("food_safety", "Food safety", "食品安全", "economy", "scjg", False, GENERAL, 2.5, _HIGH),
    Category("consumer_dispute", "Consumer dispute or price fraud", "消费纠纷与价格欺诈", "economy", "scjg", False, GENERAL, 3.5),
    Category("business_service", "Business service request", "企业服务诉求", "economy", "scjg", False, GENERAL, 1.0),
    Category("lift_breakdown", "Lift breakdown", "电梯故障", "economy", "scjg", False, UTILITY, 1.5, _HIGH),
    Category("unpaid_wages", "Unpaid wages", "拖欠工资", "economy", "rsj", False, COMPLEX, 2.0, _HIGH),
    # 民生服务 livelihood services
    Category("exposed_garbage", "Exposed garbage", "暴露垃圾", "livelihood", "cgj", True, GARBAGE, 10.0, sources=_STREET),
    Category("dirty_road", "Dirty road surface", "道路不洁", "livelihood", "cgj", True, RAPID, 6.0, sources=_STREET),
    Category("standing_water", "Standing water on a road", "道路积水", "livelihood", "swj", False, WATER, 2.0, _HIGH, _SENSED, rain=12.0),
    Category("water_outage", "Water supply outage", "停水与供水故障", "livelihood", "swj", False, UTILITY, 2.5, _HIGH),
    Category("power_outage", "Power outage", "停电与供电故障", "livelihood", "power", False, UTILITY, 2.5, _HIGH, rain=2.0),
    Category("damaged_road", "Damaged road or pothole", "道路破损", "livelihood", "jtj", False, ROAD, 4.0, sources=_STREET, rain=1.5),
    Category("manhole_cover", "Missing or broken manhole cover", "井盖缺失破损", "livelihood", "cgj", False, EMERGENCY, 2.0, _URGENT, _SENSED),
    Category("street_light_out", "Street light out", "路灯不亮", "livelihood", "cgj", False, UTILITY, 3.0, sources=_SENSED, night=3.0),
    Category("green_space", "Green space upkeep", "绿化养护", "livelihood", "cgj", False, GREEN, 2.0, sources=_STREET),
    Category("elderly_care", "Care for elderly people living alone", "独居老人关爱", "livelihood", "mzj", True, GENERAL, 2.5, sources=(0.7, 0.2, 0.1, 0, 0)),
    Category("property_dispute", "Property management dispute", "物业服务纠纷", "livelihood", "zjw", False, COMPLEX, 5.0),
    Category("noise_nuisance", "Noise nuisance", "噪声扰民", "livelihood", "gaj", False, RAPID, 5.0, night=4.0),
    Category("illegal_parking", "Illegal parking", "违章停车", "livelihood", "gaj", False, RAPID, 6.0, sources=_STREET),
    Category("public_health", "Public health and pest control", "公共卫生与病媒防治", "livelihood", "wjw", True, GENERAL, 1.5),
    Category("construction_noise", "Construction noise", "施工噪声", "livelihood", "sthj", False, RAPID, 3.0, night=3.0),
    # 平安法治 safety and rule of law
    Category("neighbour_dispute", "Neighbour dispute", "邻里纠纷", "safety", "sfj", True, GENERAL, 4.0, sources=(0.6, 0.3, 0.1, 0, 0)),
    Category("illegal_construction", "Illegal construction", "违法建设", "safety", "zjw", False, CONSTRUCTION, 3.0, _HIGH, _STREET),
    Category("unsafe_building", "Unsafe building", "房屋安全隐患", "safety", "zjw", False, EMERGENCY, 1.5, _HIGH, rain=3.0),
    Category("fire_hazard", "Fire hazard (blocked exits, clutter)", "消防安全隐患", "safety", "xfj", True, EMERGENCY, 3.0, _HIGH, _SENSED),
    Category("gas_leak", "Gas leak", "燃气泄漏", "safety", "gas", False, EMERGENCY, 1.0, (0.8, 0.15, 0.05), _SENSED),
    Category("public_order", "Public order concern", "治安隐患", "safety", "gaj", False, GENERAL, 2.0, _HIGH, night=2.0),
    Category("geological_hazard", "Landslip or unstable rock", "地质灾害隐患", "safety", "yjj", False, EMERGENCY, 0.6, _URGENT, rain=10.0),
    Category("work_safety", "Workplace safety hazard", "安全生产隐患", "safety", "yjj", False, GENERAL, 1.2, _HIGH),
    Category("illegal_discharge", "Illegal discharge or pollution", "违法排污", "safety", "sthj", False, GENERAL, 2.0, _HIGH, rain=1.5),
)  # fmt: skip
CATEGORIES_BY_CODE = {c.code: c for c in CATEGORIES}


@dataclass(frozen=True)
class CatalogueIds:
    """Store ids of the catalogue: {department code: id} and {category code: id}."""

    departments: dict[str, int]
    categories: dict[str, int]


def _upsert_by_code(conn: Connection, table, rows: list[dict]) -> dict[str, int]:
    """Insert rows or update those whose code exists (ids stay, so API keys and references survive); {code: id}."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.code], set_={name: statement.excluded[name] for name in rows[0] if name != "code"}
    )
    conn.execute(statement, rows)
    codes = [row["code"] for row in rows]
    return dict(conn.execute(select(table.c.code, table.c.id).where(table.c.code.in_(codes))).all())


def store_catalogue(conn: Connection) -> CatalogueIds:
    """Insert or update the departments, categories and their limits by code; returns their ids."""
    dept_ids = _upsert_by_code(
        conn,
        schema.departments,
        [{"code": x.code, "name_en": x.name_en, "name_zh": x.name_zh, "kind": x.kind, "active": True} for x in DEPARTMENTS],
    )
    cat_ids = _upsert_by_code(
        conn,
        schema.categories,
        [
            {
                "code": x.code,
                "name_en": x.name_en,
                "name_zh": x.name_zh,
                "sector": x.sector,
                "department_id": dept_ids[x.department],
                "grid_worker_ok": x.grid_worker_ok,
                "active": True,
            }
            for x in CATEGORIES
        ],
    )
    lim = schema.category_limits
    conn.execute(lim.delete().where(lim.c.category_id.in_(list(cat_ids.values()))))
    conn.execute(
        lim.insert(),
        [
            {"category_id": cat_ids[x.code], "priority": p, "ack_minutes": a, "handle_minutes": h}
            for x in CATEGORIES
            for p, (a, h) in sorted(x.limits.items())
        ],
    )
    return CatalogueIds(dept_ids, cat_ids)
