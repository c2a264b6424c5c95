"""The rules both readings of the leaders' review share: units compared, category tables, the league's cards and order.

The review is read from the raw incidents (data/metrics/trends.py) or from the roll-up
(data/metrics/trends_rollup.py); both rank, card and compare with these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from data import schema
from data.errors import ValidationError

__all__ = [
    "CHILD_LEVEL",
    "RISING",
    "LeagueThresholds",
    "category_table",
    "league_card",
    "league_rank_key",
    "ratio",
    "rising_categories",
]

RISING = 10
# The unit level compared side by side under each scope level: the city compares districts, and so on.
CHILD_LEVEL = {schema.CITY: schema.DISTRICT, schema.DISTRICT: schema.STREET, schema.STREET: schema.COMMUNITY}
CHILD_LEVEL[schema.COMMUNITY] = schema.GRID
CHILD_LEVEL[schema.GRID] = schema.GRID


@dataclass(frozen=True)
class LeagueThresholds:
    """When a department earns the red list (红榜) or a yellow card (黄牌). Shares are of the department's
    own volume, so a big department is not carded just for being big; `min_volume` keeps a department
    with a handful of cases off both lists."""

    min_volume: int = 5
    red_min_on_time: float = 0.95
    red_max_nobody_came: float = 0.02
    red_max_no_effect: float = 0.02
    yellow_below_on_time: float = 0.80
    yellow_nobody_came: float = 0.10
    yellow_no_effect: float = 0.10

    def __post_init__(self) -> None:
        for key, value in self.__dict__.items():
            if key != "min_volume" and not 0 <= value <= 1:
                raise ValidationError(f"threshold {key} must be a share between 0 and 1; got {value!r}")
        if self.min_volume < 0:
            raise ValidationError("min_volume must not be negative")


def ratio(part, whole) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return float(part) / float(whole) if whole else None


def category_table(now_c: dict[int, int], before: dict[int, int], cats: dict) -> list[dict]:
    """Rows of category, received now and before, change: busiest first (categories with any count)."""
    out = []
    for cid in sorted(set(now_c) | set(before)):
        row = {k: v for k, v in cats[cid].items() if k != "id"}
        row.update(category_id=cid, received=now_c.get(cid, 0), previous=before.get(cid, 0))
        row["change"] = row["received"] - row["previous"]
        out.append(row)
    return sorted(out, key=lambda r: (-r["received"], r["code"]))


def rising_categories(categories: list[dict]) -> list[dict]:
    """The categories whose received count rose most against the previous period (rises only)."""
    rising = [r for r in categories if r["change"] > 0]
    return sorted(rising, key=lambda r: (-r["change"], -r["received"], r["code"]))[:RISING]


def league_card(row: dict, t: LeagueThresholds) -> str | None:
    """'yellow' (黄牌预警), 'red' (红榜) or None; a yellow card outweighs any red-list merit."""
    if row["volume"] < t.min_volume:
        return None
    on_time, nobody, no_effect = row["on_time_rate"], row["nobody_came_share"] or 0.0, row["no_effect_share"] or 0.0
    if (
        (on_time is not None and on_time < t.yellow_below_on_time)
        or nobody >= t.yellow_nobody_came
        or no_effect >= t.yellow_no_effect
    ):
        return "yellow"
    if (
        on_time is not None
        and on_time >= t.red_min_on_time
        and nobody <= t.red_max_nobody_came
        and no_effect <= t.red_max_no_effect
    ):
        return "red"
    return None


def league_table(figures: Iterable[tuple[int, dict]], deps: dict, t: LeagueThresholds) -> list[dict]:
    """The department league from (department id, its figures over the period): departments with work
    in the period, each with its shares and card, ranked best first (league_rank_key)."""
    out = []
    for dep_id, f in figures:
        volume = f["due_for_ack"] + f["resolved"]
        if not volume:
            continue
        row = {
            "department_id": dep_id,
            **{k: deps[dep_id][k] for k in ("code", "name_en", "name_zh")},
            **f,
            "volume": volume,
            "nobody_came_share": ratio(f["nobody_came"], f["due_for_ack"]),
            "no_effect_share": ratio(f["no_effect"], f["resolved"]),
        }
        row["card"] = league_card(row, t)
        out.append(row)
    out.sort(key=league_rank_key)
    for rank, row in enumerate(out, 1):
        row["rank"] = rank
    return out


def league_rank_key(row: dict) -> tuple:
    """Best first: on-time rate, then response rate, then fewest no-shows and no-effects by share."""

    def rate(value: float | None) -> float:
        return -(value if value is not None else -1.0)

    return (
        rate(row["on_time_rate"]),
        rate(row["response_rate"]),
        row["nobody_came_share"] or 0.0,
        row["no_effect_share"] or 0.0,
        row["code"],
    )
