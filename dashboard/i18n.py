"""English and Simplified Chinese UI text, with the Chinese terms of DOMAIN.md; t(key, lang) looks one up."""

from __future__ import annotations

from dashboard.trends_text import TRENDS_TEXT

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


# The dispatcher's desk (/dispatch, 一键调度): kept in one block so it reads as one screen's vocabulary.
TEXT.update(
    {
        "dispatch.title": ("Dispatch desk", "一键调度"),
        "card.open_dispatch": ("Open in the dispatch desk →", "在一键调度中处理 →"),
        "nav.overview": ("Overview", "一屏统揽"),
        "nav.wall": ("Wall", "指挥大屏"),
        "nav.dispatch": ("Dispatch", "一键调度"),
        "nav.inbox": ("Inbox", "待办通知"),
        "dispatch.filter.area": ("Area", "区域"),
        "dispatch.filter.category": ("Category", "类别"),
        "dispatch.filter.priority": ("Priority", "优先级"),
        "dispatch.filter.state": ("State", "状态"),
        "dispatch.filter.all": ("All", "全部"),
        "dispatch.state.overdue": ("Overdue", "超期"),
        "dispatch.state.awaiting": ("Awaiting dispatch", "待派遣"),
        "dispatch.view.waiting": ("Show the cases awaiting dispatch", "只看待派遣的案件"),
        "dispatch.view.reported": ("Show the new reports", "只看新上报"),
        "dispatch.view.returned": ("Show the returned cases", "只看被退回的案件"),
        "dispatch.view.reopened": ("Show the reopened cases", "只看重新打开的案件"),
        "dispatch.view.overdue": ("Show the overdue cases", "只看超期案件"),
        "dispatch.count": ("{n} in the queue", "队列 {n} 件"),
        "dispatch.count_capped": ("first {n} shown", "仅显示前 {n} 件"),
        "dispatch.kpi.waiting": ("Awaiting dispatch", "待派遣"),
        "dispatch.kpi.reported": ("New reports", "新上报"),
        "dispatch.kpi.registered": ("Registered", "已立案"),
        "dispatch.kpi.returned": ("Returned", "退回"),
        "dispatch.kpi.reopened": ("Reopened", "重新派遣"),
        "dispatch.kpi.overdue": ("Overdue", "超期"),
        "dispatch.kpi.near_due": ("Near due", "临期"),
        "dispatch.col.id": ("No.", "编号"),
        "dispatch.col.priority": ("Priority", "优先级"),
        "dispatch.col.state": ("State", "状态"),
        "dispatch.col.category": ("Category", "类别"),
        "dispatch.col.area": ("Area", "区域"),
        "dispatch.col.time_left": ("Time left", "剩余时间"),
        "dispatch.col.assignee": ("Assignee", "承办"),
        "dispatch.col.reported": ("Reported", "上报时间"),
        "dispatch.col.description": ("Description", "描述"),
        "dispatch.col.flags": ("Marks", "标记"),
        "dispatch.badge.reopened": ("reopened ×{n}", "重开×{n}"),
        "dispatch.badge.escalated": ("escalated ×{n}", "督办×{n}"),
        "dispatch.unlocated": ("Unlocated", "未定位"),
        "dispatch.batch": ("Dispatch selected to their suggestions", "选中事件按建议批量派遣"),
        "dispatch.panel.empty": (
            "Pick an incident in the queue: click it, or move with the arrow keys.",
            "在队列中选择事件：点击，或用方向键移动。",
        ),
        "dispatch.panel.gone": ("This incident no longer exists.", "该事件已不存在。"),
        "dispatch.panel.source": ("Source", "来源"),
        "dispatch.panel.version": ("Version", "版本"),
        "dispatch.suggest.title": ("Suggested assignee", "建议承办"),
        "dispatch.reason.district_list": (
            "named for this category by {district}'s responsibility list",
            "{district}职责清单指定的承办部门",
        ),
        "dispatch.reason.category_list": (
            "the category's responsible department (responsibility list)",
            "该类别的职责部门（职责清单）",
        ),
        "dispatch.worker.on_duty_list": (
            "this grid's worker; the matter is on their duty list",
            "本网格网格员，事项在其职责清单内",
        ),
        "dispatch.worker.category_not_for_grid_workers": (
            "Not offered to grid workers: this category is outside their duty lists (清单外事项下派过滤).",
            "不下派网格员：该类别不在网格员职责清单内（清单外事项下派过滤）。",
        ),
        "dispatch.worker.not_on_duty_list": (
            "Not offered to {worker}: the category is not on this grid worker's duty list (清单外事项下派过滤).",
            "不下派{worker}：该事项不在其职责清单内（清单外事项下派过滤）。",
        ),
        "dispatch.first.urgent": (
            "Urgent: the responsible department first; the grid worker is offered below.",
            "紧急事项：先派职责部门，网格员见下方备选。",
        ),
        "dispatch.first.high_priority_safety": (
            "High-priority safety matter: the responsible department first; the grid worker is offered below.",
            "高优先级平安法治事项：先派职责部门，网格员见下方备选。",
        ),
        "dispatch.first.routine_on_duty_list": (
            "Routine matter on the grid worker's duty list: the grid worker first.",
            "常规事项且在网格员职责清单内：先派网格员。",
        ),
        "dispatch.worker.no_worker": ("This grid has no active grid worker.", "本网格暂无在岗网格员。"),
        "dispatch.worker.no_grid": ("Not inside any grid: no grid worker to suggest.", "未落入任何网格，无网格员可建议。"),
        "dispatch.returned_by": (
            "This department returned the case on {at}: check before sending it back.",
            "该部门已于{at}退回此案，请核实后再派。",
        ),
        "dispatch.to": ("Dispatch to {name}", "派遣至{name}"),
        "dispatch.register_to": ("Register and dispatch to {name}", "立案并派遣至{name}"),
        "dispatch.reassign_to": ("Reassign to {name}", "改派至{name}"),
        "dispatch.other": ("Another department", "其他部门"),
        "dispatch.other.go": ("Send", "派遣"),
        "dispatch.duplicates": ("Likely duplicates (一件事一次办)", "疑似重复（一件事一次办）"),
        "dispatch.duplicates.none": ("No open report of this category nearby.", "附近无同类未结事件。"),
        "dispatch.dup.line": (
            "#{id} · {distance} m away · {hours} h apart · {state}",
            "#{id} · 相距{distance}米 · 间隔{hours}小时 · {state}",
        ),
        "dispatch.merge": ("Merge #{merged} into #{kept}", "合并 #{merged} 至 #{kept}"),
        "dispatch.clocks": ("Clocks", "时限"),
        "dispatch.clock.target": ("Dispatch by", "派遣时限"),
        "dispatch.clock.ack": ("Acknowledge by", "签收时限"),
        "dispatch.clock.handle": ("Handle by", "处置时限"),
        "dispatch.clock.left": ("{t} left", "剩余{t}"),
        "dispatch.clock.over": ("{t} over", "超出{t}"),
        "dispatch.actions": ("Actions", "处置操作"),
        "dispatch.timeline": ("Audit trail (留痕)", "全程留痕"),
        "dispatch.deliveries": ("Notifications (一键智达)", "一键智达"),
        "dispatch.delivery.line": (
            "Webhook {kind} → {department}: {status}, {attempts} attempt(s)",
            "推送{kind} → {department}：{status}，尝试{attempts}次",
        ),
        "dispatch.delivery.none": ("No webhook for this incident.", "本事件无推送记录。"),
        "dispatch.prompt.reason": ("Why: {action}", "{action}：请说明原因"),
        "dispatch.prompt.note": ("Note for: {action}", "{action}：填写说明"),
        "dispatch.prompt.hours": ("Extra hours", "延期小时数"),
        "dispatch.prompt.ok": ("Confirm", "确认"),
        "dispatch.prompt.cancel": ("Cancel", "取消"),
        "dispatch.msg.done": ("{action}: #{id} is now {state}.", "{action}：#{id} 现为{state}。"),
        "dispatch.msg.dispatched": ("#{id} dispatched to {name}.", "#{id} 已派遣至{name}。"),
        "dispatch.msg.conflict": (
            "Someone else acted first: #{id} is now {state} (version {version}). The panel shows its current state.",
            "他人已先处理：#{id} 现为{state}（版本{version}），面板已更新为最新状态。",
        ),
        "dispatch.msg.refused": ("Not done: {reason}", "未执行：{reason}"),
        "dispatch.msg.late": (
            "Not done: your click on #{id} reached the server {seconds} s after you made it. The panel shows the case as it is now.",
            "未执行：对 #{id} 的点击 {seconds} 秒后才到达服务器，面板已更新为最新状态，请确认后再操作。",
        ),
        "dispatch.msg.look_again": (
            "Not done: no case was shown when you clicked. Pick it again.",
            "未执行：点击时未显示事件，请重新选择。",
        ),
        "dispatch.msg.undone": ("Dispatch undone: #{id} is back in the queue.", "已撤回派遣：#{id} 回到待派队列。"),
        "dispatch.msg.merged": ("#{merged} merged into #{kept}.", "#{merged} 已合并至 #{kept}。"),
        "dispatch.msg.need_reason": ("Write a reason first.", "请先填写原因。"),
        "dispatch.msg.batch": ("{ok} dispatched, {failed} not.", "成功派遣{ok}件，未派{failed}件。"),
        "dispatch.msg.batch_none": ("Tick the rows to dispatch first.", "请先勾选要派遣的事件。"),
        "dispatch.undo": ("Undo ({s} s)", "撤回（{s}秒）"),
        # satisfaction (评价) and the centre's inbox of departments' answers (部门报到)
        "dispatch.rating": ("Citizen satisfaction (评价)", "群众满意度评价"),
        "dispatch.rating.ask": ("Record the citizen's rating from the call-back:", "录入回访评价："),
        "dispatch.rating.current": ("Rated {stars} ({score}/5)", "已评价 {stars}（{score}/5）"),
        "dispatch.rating.none": ("Not rated yet.", "尚未评价。"),
        "dispatch.rating.1": ("Very dissatisfied", "非常不满意"),
        "dispatch.rating.2": ("Dissatisfied", "不满意"),
        "dispatch.rating.3": ("Neutral", "基本满意"),
        "dispatch.rating.4": ("Satisfied", "满意"),
        "dispatch.rating.5": ("Very satisfied", "非常满意"),
        "dispatch.msg.rated": ("#{id} rated {score}/5.", "#{id} 评价为 {score}/5。"),
        "dispatch.centre": ("Reports back", "部门报到"),
        "dispatch.centre.title": ("Departments' answers (部门报到)", "部门报到"),
        "dispatch.centre.unread": ("{count} new", "{count} 条新消息"),
        "dispatch.centre.empty": ("No answers from departments yet.", "暂无部门反馈。"),
        "dispatch.centre.read_all": ("Mark all read", "全部已读"),
        "dispatch.centre.acknowledge": ("{who} acknowledged #{id} {category}", "{who} 已签收 #{id} {category}"),
        "dispatch.centre.return": ("{who} returned #{id} {category}", "{who} 退回 #{id} {category}"),
        "dispatch.centre.resolve": ("{who} resolved #{id} {category}", "{who} 已办结 #{id} {category}"),
        "dispatch.clock.working": ("Counted in working hours", "按工作时间计算"),
        "action.report": ("Report", "上报"),
        "action.register": ("Register", "立案"),
        "action.reject": ("Reject", "不予立案"),
        "action.merge": ("Merge", "合并"),
        "action.dispatch": ("Dispatch", "派遣"),
        "action.reassign": ("Reassign", "改派"),
        "action.acknowledge": ("Acknowledge", "签收"),
        "action.return": ("Return", "退回"),
        "action.resolve": ("Resolve", "处置反馈"),
        "action.verify_pass": ("Verify: pass", "核查通过"),
        "action.verify_fail": ("Verify: fail", "核查不通过"),
        "action.escalate": ("Escalate", "督办"),
        "action.extend": ("Extend", "延期"),
        "action.note": ("Add note", "备注"),
        "action.rate": ("Rate", "评价"),
        "action.recall": ("Undo dispatch", "撤回派遣"),
        "delivery.pending": ("pending", "待送达"),
        "delivery.delivered": ("delivered", "已送达"),
        "delivery.failed": ("failed", "失败"),
        "delivery.cancelled": ("cancelled", "已取消"),
    }
)


# The leaders' review (/trends, 趋势研判): its own table, dashboard/trends_text.py.
TEXT.update(TRENDS_TEXT)


TEXT.update(
    {
        "inbox.title": ("Inbox", "一键智达"),
        "inbox.department": ("Department", "部门"),
        "inbox.choose": ("Choose a department to see its notifications.", "请选择部门查看其通知。"),
        "inbox.empty": ("No notifications yet.", "暂无通知。"),
        "inbox.unread": ("Unread", "未读"),
        "inbox.unread_count": ("{count} unread", "未读 {count} 条"),
        "inbox.dispatch": ("New case dispatched", "新派遣案件"),
        "inbox.reassign": ("Case reassigned to you", "案件改派至本部门"),
        "inbox.recall": ("Dispatch recalled", "派遣已撤回"),
        "inbox.withdrawn": ("Case reassigned elsewhere", "案件已改派他处"),
        "inbox.escalate": ("Case escalated (督办)", "案件督办"),
    }
)


# Early warnings (预测预警): the alerts panel of the overview and the wall, and the /warnings page.
TEXT.update(
    {
        "nav.warnings": ("Warnings", "预测预警"),
        "alerts.title": ("Early warnings", "预测预警"),
        "alerts.empty": ("No early warnings here now.", "本范围当前无预警。"),
        "alerts.more": ("{count} more on the warnings page", "另有 {count} 条，见预警页"),
        "alerts.more_kinds": ("{count} more on the warnings page: {kinds}", "另有 {count} 条（{kinds}），见预警页"),
        "alerts.kind.surge": ("Surge", "激增"),
        "alerts.kind.hotspot": ("New hotspot", "新热点"),
        "alerts.kind.chronic": ("Recurring problem", "反复出现"),
        "alerts.kind.deadline": ("Deadline at risk", "即将超期"),
        "alerts.kind.None": ("Alert", "预警"),
        "alerts.status.open": ("Open", "待处理"),
        "alerts.status.acknowledged": ("Acknowledged", "已确认"),
        "alerts.status.dismissed": ("Dismissed", "已忽略"),
        "alerts.status.cased": ("Case opened", "已立案"),
        "alerts.status.cleared": ("Cleared", "已消除"),
        "alerts.observed_expected": ("{observed} seen, {expected} expected", "实际 {observed}，预期 {expected}"),
        "alerts.minutes": ("{n} min", "{n}分钟"),
        "alerts.hours": ("{n} h", "{n}小时"),
        "alerts.days": ("{n} d", "{n}天"),
        "alerts.ago": ("{age} ago", "{age}前"),
        "alerts.just_now": ("just now", "刚刚"),
        "alerts.stale": ("not updating", "未能更新"),
        "alerts.deadline_numbers": ("{chance}% likely to miss · {hours} h left", "超期可能性{chance}% · 剩余{hours}小时"),
        "alerts.open_incident": ("Incident #{id} on the dispatch desk", "在调度台查看事件 #{id}"),
        "alerts.show": ("Show on the map", "地图定位"),
        "alerts.ack": ("Acknowledge", "确认"),
        "alerts.dismiss": ("Dismiss", "忽略"),
        "alerts.case": ("Open a case", "立案"),
        "alerts.prompt.dismiss": ("Why dismiss alert #{id}? A reason is required.", "忽略预警 #{id} 的原因（必填）："),
        "alerts.prompt.ok": ("Dismiss", "确认忽略"),
        "alerts.prompt.cancel": ("Cancel", "取消"),
        "alerts.msg.reason_required": (
            "A reason is required to dismiss an alert; nothing was changed.",
            "忽略预警必须填写原因，未做任何更改。",
        ),
        "alerts.msg.acknowledged": ("Alert #{id} acknowledged.", "预警 #{id} 已确认。"),
        "alerts.msg.dismissed": ("Alert #{id} dismissed: {note}", "预警 #{id} 已忽略：{note}"),
        "alerts.msg.case": ("Alert #{id} is now case #{incident}.", "预警 #{id} 已转为案件 #{incident}。"),
        "alerts.msg.open_dispatch": ("Dispatch it", "前往派遣"),
        "alerts.msg.refused": ("Not done: {reason}", "未执行：{reason}"),
        "alerts.msg.gone": ("Alert #{id} no longer exists.", "预警 #{id} 已不存在。"),
        "alerts.msg.not_allowed": ("Your role may not act on alerts.", "您的角色无权处理预警。"),
        "warnings.title": ("Early warning", "预测预警"),
        "warnings.alerts": ("Alerts", "预警列表"),
        "warnings.filter.kind": ("Kind", "类型"),
        "warnings.filter.status": ("Status", "状态"),
        "warnings.filter.all": ("All", "全部"),
        "warnings.col.rank": ("No.", "序号"),
        "warnings.col.kind": ("Kind", "类型"),
        "warnings.col.place": ("Place", "位置"),
        "warnings.col.category": ("Category", "类别"),
        "warnings.col.reason": ("Reason", "原因"),
        "warnings.col.numbers": ("Numbers", "数据"),
        "warnings.col.score": ("Score", "评分"),
        "warnings.col.status": ("Status", "状态"),
        "warnings.col.first_seen": ("First seen", "首次发现"),
        "warnings.col.last_seen": ("Last seen", "最近发现"),
        "warnings.col.acted": ("Handled by", "处理人"),
        "warnings.col.case": ("Case", "案件"),
        "warnings.col.sector": ("Sector", "板块"),
        "warnings.col.sensitivity": ("Sensitivity", "灵敏度"),
        "warnings.col.enabled": ("On", "启用"),
        "warnings.col.updated": ("Changed", "修改时间"),
        "warnings.col.updated_by": ("Changed by", "修改人"),
        "warnings.empty": ("No alerts match.", "没有符合条件的预警。"),
        "warnings.settings": ("Sensitivity per category", "各类别预警灵敏度"),
        "warnings.settings.help": (
            "Higher sensitivity raises alerts on smaller deviations; a category switched off raises none.",
            "灵敏度越高，偏离越小即预警；关闭的类别不产生预警。",
        ),
        "warnings.msg.saved": (
            "{category}: sensitivity {sensitivity}, {enabled}.",
            "{category}：灵敏度 {sensitivity}，{enabled}。",
        ),
        "warnings.msg.on": ("on", "已启用"),
        "warnings.msg.off": ("off", "已关闭"),
        "warnings.msg.refused": ("Not saved: {reason}", "未保存：{reason}"),
        "warnings.msg.not_allowed": ("Only an administrator may change sensitivity.", "仅管理员可修改灵敏度。"),
    }
)

# The leaders' review map (/trends): the chosen rate over the units one level below the scope.
TEXT.update(
    {
        "trends.map.title": ("Map: {rate}", "地图：{rate}"),
        "trends.map.no_data": ("No data", "无数据"),
        "trends.map.hint": ("Click an area to review it.", "点击区域查看其研判。"),
    }
)
