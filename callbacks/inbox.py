"""Callbacks of the inbox page (/inbox): the chosen department or a move of the change feed redraws the list."""

from __future__ import annotations

from dash import Input, Output, State

from dashboard.pages import inbox as page

# Follows /live/events in the browser and bumps page.REFRESH when the feed moves (at most four times a second).
FOLLOW_FEED = (
    """
function (spec) {
    var NO_UPDATE = window.dash_clientside.no_update;
    if (!spec || !spec.url || typeof EventSource === "undefined") { return NO_UPDATE; }
    var state = window.citybrainInbox = window.citybrainInbox || {source: null, timer: null};
    if (state.source) { state.source.close(); }
    var words = spec.words || {};
    var head = spec.head;
    function status(name) {
        var el = document.getElementById("__STATUS__");
        if (el) { el.textContent = words[name] || name; el.className = "cb-live cb-live-" + name; }
    }
    var source = new EventSource(spec.url + "?after=" + spec.head);
    state.source = source;
    source.onmessage = function (event) {
        // Left the page (the shell swaps pages in place): stop holding a stream for nobody.
        if (!document.getElementById("__ROOT__")) { source.close(); state.source = null; return; }
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        status(data.ok === false ? "stale" : "live");
        if ((data.type === "changes" || data.type === "reset") && data.head !== head) {
            head = data.head;
            if (state.timer) { return; }
            state.timer = setTimeout(function () {
                state.timer = null;
                window.dash_clientside.set_props("__REFRESH__", {data: {head: head, at: Date.now()}});
            }, 250);
        }
    };
    source.onerror = function () { status(source.readyState === 2 ? "stale" : "connecting"); };
    return {following: spec.head};
}
""".replace("__ROOT__", page.ROOT)
    .replace("__STATUS__", page.LIVE_STATUS)
    .replace("__REFRESH__", page.REFRESH)
)


def register(app, deps) -> None:
    app.clientside_callback(FOLLOW_FEED, Output(page.FOLLOWING, "data"), Input(page.STREAM, "data"))

    @app.callback(
        Output(page.LIST, "children"),
        Input(page.DEPARTMENT, "value"),
        Input(page.REFRESH, "data"),
        State(page.LANG, "data"),
        prevent_initial_call=True,
    )
    def redraw(department_code, _refresh, lang):
        return page.inbox_list(page.read_inbox(deps.engine, department_code), lang, deps.settings.timezone)
