"""English and Simplified Chinese UI text, with the Chinese terms of DOMAIN.md; t(key, lang) looks one up."""

from __future__ import annotations

LANGS = ("en", "zh")
DEFAULT_LANG = "en"

# key -> (English, Chinese). Chinese terms are the ones command-centre users expect (DOMAIN.md).
TEXT: dict[str, tuple[str, str]] = {
    "app.title": ("CityBrain Command", "城市大脑指挥中心"),
    "overview.title": ("One-screen overview", "一屏统揽"),
    "wall.title": ("Command wall", "指挥大屏"),
    "lang.switch": ("中文", "English"),
    # the administrative ladder (五级贯通)
    "level.city": ("City", "全市"),
    "level.district": ("District", "区县"),
    "level.street": ("Street", "街道"),
    "level.community": ("Community", "社区"),
    "level.grid": ("Grid", "网格"),
    "crumb.city": ("Whole city", "全市"),
    # map metrics and layers
    "metric.label": ("Colour by", "着色指标"),
    "metric.open": ("Open backlog", "待办积压"),
    "metric.overdue": ("Overdue", "超期"),
    "metric.new_24h": ("New in 24 h", "24小时新增"),
    "heat.label": ("Heat", "热力"),
    "heat.off": ("Off", "关闭"),
    "heat.1h": ("1 h", "1小时"),
    "heat.24h": ("24 h", "24小时"),
    "heat.7d": ("7 d", "7天"),
    "legend.none": ("none", "无"),
    "legend.no_data": ("no data", "无数据"),
    # KPI cards
    "kpi.open": ("Open backlog", "待办积压"),
    "kpi.new_today": ("New today", "今日新增"),
    "kpi.closed_today": ("Closed today", "今日结案"),
    "kpi.overdue": ("Overdue", "超期"),
    "kpi.near_due": ("Near due", "临期"),
    "kpi.on_time_rate": ("On-time rate", "按期处置率"),
    "kpi.median_ack": ("Median acknowledge", "签收时长中位数"),
    "kpi.median_handle": ("Median handling", "处置时长中位数"),
    "kpi.satisfaction": ("Satisfaction", "满意率"),
    "kpi.unlocated": ("Unlocated", "未定位"),
    "kpi.vs_yesterday": ("vs yesterday", "较昨日"),
    "kpi.no_change": ("same as yesterday", "与昨日持平"),
    # department board (网格吹哨、部门报到)
    "board.title": ("Department response", "部门报到"),
    "board.department": ("Department", "部门"),
    "board.open": ("Open", "在办"),
    "board.overdue": ("Overdue", "超期"),
    "board.median_ack": ("Ack (median)", "签收中位"),
    "board.median_handle": ("Handling (median)", "处置中位"),
    "board.on_time_rate": ("On time", "按期率"),
    "board.not_reported": ("Whistle blown, nobody came", "吹哨不到"),
    "board.no_effect": ("Came, no effect", "人到无效"),
    "board.red_flag": ("Red alert", "红色预警"),
    "board.yellow_flag": ("Yellow card", "黄牌预警"),
    "board.empty": ("No department has cases in this scope.", "本范围内暂无部门案件。"),
    # charts
    "trend.title": ("Last 24 hours", "近24小时"),
    "trend.new": ("New", "新增"),
    "trend.closed": ("Closed", "结案"),
    "breakdown.title": ("By sector and category", "按板块与类别"),
    "sector.party": ("Party building", "党的建设"),
    "sector.economy": ("Economic development", "经济发展"),
    "sector.livelihood": ("Livelihood services", "民生服务"),
    "sector.safety": ("Safety & rule of law", "平安法治"),
    # priorities and clocks
    "priority.1": ("Urgent", "紧急"),
    "priority.2": ("High", "重要"),
    "priority.3": ("Normal", "一般"),
    "due.overdue": ("Overdue", "超期"),
    "due.near_due": ("Near due", "临期"),
    "due.on_time": ("On time", "正常"),
    # incident states (问题全闭环)
    "state.reported": ("Reported", "上报"),
    "state.registered": ("Registered", "立案"),
    "state.rejected": ("Rejected", "不予立案"),
    "state.merged": ("Merged", "已合并"),
    "state.dispatched": ("Dispatched", "已派遣"),
    "state.acknowledged": ("Acknowledged", "已签收"),
    "state.returned": ("Returned", "退回"),
    "state.resolved": ("Resolved", "处置反馈"),
    "state.reopened": ("Reopened", "重新派遣"),
    "state.closed": ("Closed", "结案"),
    # the incident card
    "card.title": ("Incident", "事件"),
    "card.category": ("Category", "类别"),
    "card.priority": ("Priority", "优先级"),
    "card.state": ("State", "状态"),
    "card.reported": ("Reported", "上报时间"),
    "card.due": ("Due", "时限"),
    "card.assignee": ("Assigned to", "承办"),
    "card.address": ("Address", "地址"),
    "card.grid": ("Grid", "网格"),
    "card.close": ("Close", "关闭"),
    "card.not_found": ("This incident no longer exists.", "该事件已不存在。"),
    # live status
    "live.live": ("Live", "实时"),
    "live.connecting": ("Connecting", "连接中"),
    "live.polling": ("Polling", "轮询"),
    "live.stale": ("Stale", "数据滞后"),
    "live.since": ("since", "自"),
    "as_of": ("Data as of", "数据截至"),
    "units.minutes": ("min", "分钟"),
    "units.hours": ("h", "小时"),
}


def normalise_lang(lang: str | None) -> str:
    """A supported language code for anything the user or the URL sent ('zh-CN' -> 'zh')."""
    if not lang:
        return DEFAULT_LANG
    code = str(lang).strip().lower()[:2]
    return code if code in LANGS else DEFAULT_LANG


def t(key: str, lang: str | None = DEFAULT_LANG) -> str:
    """The text for `key` in `lang`; an unknown key shows itself so a gap is visible, never a crash."""
    pair = TEXT.get(key)
    if pair is None:
        return key
    return pair[1] if normalise_lang(lang) == "zh" else pair[0]


def name(row, lang: str | None) -> str:
    """The Chinese or English name of a unit, department or category (a mapping with name_en/name_zh)."""
    zh = normalise_lang(lang) == "zh"
    primary, fallback = ("name_zh", "name_en") if zh else ("name_en", "name_zh")
    return row.get(primary) or row.get(fallback) or ""


def duration(minutes: float | None, lang: str | None) -> str:
    """A duration in minutes as '42 min' or '3.5 h' ('—' when unknown)."""
    if minutes is None:
        return "—"
    if minutes < 90:
        return f"{minutes:.0f} {t('units.minutes', lang)}"
    return f"{minutes / 60:.1f} {t('units.hours', lang)}"
