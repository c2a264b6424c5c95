"""English and Chinese text of sign-in, sign-out, kiosk links and refusals, added to dashboard/i18n.py's table."""

from __future__ import annotations

from dashboard.i18n import TEXT

TEXT.update(
    {
        "auth.title": ("Sign in", "登录"),
        "auth.username": ("User name", "用户名"),
        "auth.password": ("Password", "密码"),
        "auth.submit": ("Sign in", "登录"),
        "auth.signout": ("Sign out", "退出登录"),
        "auth.signed_in_as": ("Signed in as", "当前用户"),
        "auth.wrong": ("Wrong user name or password.", "用户名或密码错误。"),
        "auth.throttled": (
            "Too many wrong passwords for this user name from here: try again in {minutes} minute(s), "
            "or ask an administrator to set a new password.",
            "该用户名在此处密码错误次数过多：请 {minutes} 分钟后再试，或请管理员重设密码。",
        ),
        "auth.rate_limited": (
            "Too many sign-in attempts from this address: wait a minute and try again.",
            "此地址登录尝试过于频繁：请稍候一分钟再试。",
        ),
        "auth.signout_confirm": ("Sign out of CityBrain Command?", "确定退出城市大脑指挥中心？"),
        "auth.expired": ("The form had expired; please sign in again.", "表单已过期，请重新登录。"),
        "auth.signed_out": ("You are signed out.", "您已退出登录。"),
        "auth.session_ended": ("Your session ended; please sign in again.", "会话已结束，请重新登录。"),
        "auth.kiosk_invalid": (
            "This wall display link is not valid or was revoked. Ask an administrator for a new one.",
            "该大屏链接无效或已被撤销，请向管理员索取新链接。",
        ),
        "auth.refused.title": ("Not allowed", "无权访问"),
        "auth.refused.body": ("Your role does not allow this page.", "您的角色无权访问此页面。"),
        "auth.refused.home": ("Back to the overview", "返回一屏统揽"),
        "auth.outside": ("This is outside your jurisdiction.", "超出您的管辖范围。"),
        "auth.not_allowed_action": ("Your role may not do this here.", "您的角色无权执行此操作。"),
        "auth.bad_request": (
            "This request was malformed (an id or number that is not one); nothing was changed.",
            "请求格式有误（编号或数字无效），未做任何更改。",
        ),
        "auth.role.viewer": ("viewer", "查看员"),
        "auth.role.dispatcher": ("dispatcher", "调度员"),
        "auth.role.department": ("department", "部门"),
        "auth.role.leader": ("leader", "领导"),
        "auth.role.admin": ("administrator", "管理员"),
        "auth.role.kiosk": ("wall display", "大屏"),
    }
)
