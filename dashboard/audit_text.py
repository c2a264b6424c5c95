"""English and Chinese text of the /admin page's log tabs (the admin change log and the sign-in log), added to dashboard/i18n.py's table."""

from __future__ import annotations

from dashboard.i18n import TEXT

TEXT.update(
    {
        "admin.tab.signins": ("Sign-ins", "登录日志"),
        "audit.f.since": ("From", "起始日期"),
        "audit.f.until": ("To", "截止日期"),
        "audit.csv": ("Download CSV (the whole range)", "下载 CSV（所选日期内全部记录）"),
        "audit.help": (
            "The table shows the newest {rows} entries of the range; the CSV holds all of them.",
            "表格显示所选日期内最新的 {rows} 条记录；CSV 包含全部记录。",
        ),
        "signin.f.outcome": ("What", "事件"),
        "signin.f.username": ("Name typed", "输入的用户名"),
        "signin.f.account": ("Account", "账号"),
        "signin.f.address": ("Address", "地址"),
        "signin.f.user_agent": ("Browser", "浏览器"),
        "signin.outcome.signed_in": ("signed in", "登录成功"),
        "signin.outcome.failed": ("wrong name or password", "用户名或密码错误"),
        "signin.outcome.throttled": ("throttled (too many wrong passwords)", "已限制（密码错误过多）"),
        "signin.outcome.rate_limited": ("rate-limited (too many attempts)", "频率受限（尝试过多）"),
        "signin.outcome.signed_out": ("signed out", "退出登录"),
        "signin.outcome.kiosk_signed_in": ("wall link used", "大屏链接登录"),
        "signin.outcome.kiosk_refused": ("bad wall link", "无效大屏链接"),
    }
)
