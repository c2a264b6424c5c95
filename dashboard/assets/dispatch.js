/* CityBrain Command, the dispatcher's desk (/dispatch): follows the change feed, counts the undo down,
 * and gives the queue table (dash-ag-grid) its time-left column and keyboard focus.
 * Adds to the one namespace, window.citybrain (see citybrain.js); clientside callbacks reach these as
 * ClientsideFunction("citybrain", "dispatch..."). The table's functions live where dash-ag-grid looks
 * for them, window.dashAgGridFunctions.
 */
(function () {
    "use strict";

    var cb = window.citybrain = window.citybrain || {};
    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.citybrain = cb;
    var NO_UPDATE = function () { return window.dash_clientside.no_update; };

    // --- the change feed: one EventSource on /live/events, resumed by the browser after a break ----
    // Each refresh names the incidents that changed (the server re-reads only those rows); it asks for
    // the whole queue when it cannot tell (a reset, more events than one message lists, ids withheld).
    // Apart from changes, the whole queue is compared every FULL_EVERY_MS, so cases that fall due
    // without any event join the queue and clocks turn red.
    var follow = {source: null, head: null, timer: null, lastSent: 0, words: {}, ids: {}, full: false};
    var MIN_GAP_MS = 250;  // a burst of changes becomes one refresh, at most four a second
    var FULL_EVERY_MS = 60000;

    function setStatus(status) {
        var el = document.getElementById("dispatch-live-status");
        if (!el) { return; }
        el.textContent = follow.words[status] || status;
        el.className = "cb-live cb-live-" + status;
    }

    function note(data) {
        var events = data.events || [];
        if (data.type !== "changes" || (data.count || 0) > events.length) { follow.full = true; return; }
        events.forEach(function (e) {
            if (typeof e.incident_id === "number") { follow.ids[e.incident_id] = true; } else { follow.full = true; }
        });
    }

    function bump(head) {
        follow.head = head;
        if (follow.timer) { return; }
        var wait = Math.max(0, follow.lastSent + MIN_GAP_MS - Date.now());
        follow.timer = setTimeout(function () {
            var now = Date.now();
            var ids = follow.full ? null : Object.keys(follow.ids).map(Number);
            follow.timer = null;
            follow.lastSent = now;
            follow.ids = {};
            follow.full = false;
            cb.dispatchRefreshAskedAt = now;
            window.dash_clientside.set_props("dispatch-refresh", {data: {head: follow.head, at: now, ids: ids}});
        }, wait);
    }

    cb.dispatchFollow = function (spec, config) {
        setClock(config);
        if (!spec || !spec.url || typeof EventSource === "undefined") { return NO_UPDATE(); }
        if (follow.source) { follow.source.close(); }
        follow.words = (config && config.words) || {};
        follow.head = spec.head;
        var source = new EventSource(spec.url + "?after=" + spec.head);
        follow.source = source;
        source.onmessage = function (event) {
            var data;
            try { data = JSON.parse(event.data); } catch (e) { return; }
            setStatus(data.ok === false ? "stale" : "live");
            if ((data.type === "changes" || data.type === "reset") && data.head !== follow.head) {
                note(data);
                bump(data.head);
            }
        };
        source.onerror = function () {
            if (source.readyState === 2 && follow.source === source) {
                // The browser gave up reconnecting: try again from the last head seen.
                setStatus("stale");
                setTimeout(function () { cb.dispatchFollow({url: spec.url, head: follow.head}, config); }, 2000);
            } else {
                setStatus("connecting");
            }
        };
        return {status: "connecting", head: spec.head};
    };

    // The rows of the incidents a change touched (DISPATCH_DELTA) against what the table holds (the
    // stamps): new ones added, changed ones updated, those that left the queue removed; then the count.
    cb.dispatchApplyDelta = function (delta, stamps, config) {
        if (!delta || !delta.ids) { return [NO_UPDATE(), NO_UPDATE(), NO_UPDATE()]; }
        cb.dispatchDeltaAt = Date.now();  // when the rows arrived (the benchmark reads it)
        var next = Object.assign({}, stamps || {});
        var rows = {}, add = [], update = [], remove = [];
        (delta.rows || []).forEach(function (row) { rows[row.rid] = row; });
        delta.ids.forEach(function (rid) {
            var row = rows[rid];
            if (row) {
                var stamp = row.stamp;
                delete row.stamp;
                if (next[rid] === undefined) { add.push(row); } else if (next[rid] !== stamp) { update.push(row); }
                next[rid] = stamp;
            } else if (next[rid] !== undefined) {
                remove.push({rid: rid});
                delete next[rid];
            }
        });
        if (!add.length && !update.length && !remove.length) { return [NO_UPDATE(), NO_UPDATE(), NO_UPDATE()]; }
        var words = (config && config.words) || {};
        var shown = Object.keys(next).length;
        var text = (words.count || "{n}").replace("{n}", shown.toLocaleString("en-US"));
        var limit = (config && config.queue_limit) || Infinity;
        if (shown >= limit && words.count_capped) { text += " · " + words.count_capped.replace("{n}", limit.toLocaleString("en-US")); }
        // Straight to the table's API, at once: through the rowTransaction prop the change waited for a
        // render of the whole grid component (~0.2 s with 5,000 rows) and AG Grid's async batching.
        var transaction = {add: add, update: update, remove: remove};
        var api = window.dash_ag_grid && window.dash_ag_grid.getApi ? window.dash_ag_grid.getApi("dispatch-grid") : null;
        if (api && !api.isDestroyed()) {
            api.applyTransaction(transaction);
            return [NO_UPDATE(), next, text];
        }
        transaction.async = false;
        return [transaction, next, text];
    };

    setInterval(function () {
        if (follow.source && document.getElementById("dispatch-grid")) {
            window.dash_clientside.set_props("dispatch-whole", {data: {at: Date.now()}});
        }
    }, FULL_EVERY_MS);

    // The change passed on to the panel when it names the incident shown, or cannot say which changed.
    cb.dispatchPanelRefresh = function (refresh, selected) {
        var shown = selected && selected.id;
        if (!refresh || !shown) { return NO_UPDATE(); }
        if (!Array.isArray(refresh.ids) || refresh.ids.indexOf(shown) >= 0) { return refresh; }
        return NO_UPDATE();
    };

    // Stop following (a test holds a stale panel this way to meet a conflict).
    cb.dispatchUnfollow = function () {
        if (follow.source) { follow.source.close(); }
        follow.source = null;
    };

    // --- every desk click carries the case as shown and the moment of the click -----------------------
    // Noted at the click itself (capture phase, before the button's own handler asks for the callback),
    // so a request that waits (behind other requests, or for the panel to redraw) still names the version
    // the dispatcher saw and when they clicked, in the server's time; the server refuses a click that
    // arrives more than a few seconds late (data.incidents.dispatch.check_click).
    var clock = {from: null, offset: 0};

    function setClock(config) {
        var serverMs = config && config.server_ms;
        if (serverMs && serverMs !== clock.from) {  // a new desk page: its server time came with it just now
            clock.from = serverMs;
            clock.offset = serverMs - Date.now();
        }
    }

    document.addEventListener("click", function (event) {
        var button = event.target && event.target.closest ? event.target.closest("button") : null;
        if (!button || !button.closest(".cb-dispatch") || !window.dash_clientside.set_props) { return; }
        var shown = document.querySelector("#dispatch-panel [data-incident]");
        window.dash_clientside.set_props("dispatch-click", {data: {
            id: shown ? Number(shown.getAttribute("data-incident")) : null,
            version: shown ? Number(shown.getAttribute("data-version")) : null,
            at: Date.now() + clock.offset
        }});
    }, true);

    // --- undo: the bar counts down from the moment this page saw the dispatch -----------------------
    var undoSeen = {};
    cb.dispatchUndoTick = function (n, state, config) {
        if (!state || !state.key) { return [true, ""]; }
        if (!undoSeen[state.key]) { undoSeen[state.key] = Date.now(); }
        var left = state.seconds - (Date.now() - undoSeen[state.key]) / 1000;
        if (left <= 0) { return [true, ""]; }
        var template = (config && config.words && config.words.undo) || "Undo ({s} s)";
        return [false, template.replace("{s}", String(Math.ceil(left)))];
    };

    // --- the queue table -----------------------------------------------------------------------------
    var dagfuncs = window.dashAgGridFunctions = window.dashAgGridFunctions || {};

    function zh() {
        var root = document.getElementById("dispatch-root");
        return !!root && (root.getAttribute("lang") || "").indexOf("zh") === 0;
    }

    // "35 min" / "2.5 h", with a minus when the deadline has passed.
    dagfuncs.citybrainTimeLeft = function (params) {
        if (!params.data || typeof params.data.deadline_ms !== "number") { return ""; }
        var ms = params.data.deadline_ms - Date.now();
        var minutes = Math.abs(ms) / 60000;
        var text = minutes < 90 ? Math.round(minutes) + (zh() ? " 分钟" : " min")
                                : (minutes / 60).toFixed(1) + (zh() ? " 小时" : " h");
        return (ms < 0 ? "−" : "") + text;
    };

    // Arrow keys move the focus through the queue; the incident panel follows the focused row.
    dagfuncs.citybrainQueueFocus = function (params, setEventData) {
        if (params.rowIndex === null || params.rowIndex === undefined || params.rowPinned) { return; }
        var node = params.api.getDisplayedRowAtIndex(params.rowIndex);
        if (node && node.data) { setEventData({id: node.data.id}); }
    };

    // The time-left column counts down without a round trip.
    setInterval(function () {
        if (!document.getElementById("dispatch-grid") || !window.dash_ag_grid || !window.dash_ag_grid.getApi) { return; }
        try {
            window.dash_ag_grid.getApi("dispatch-grid").refreshCells({columns: ["time_left"], force: true});
        } catch (e) { /* the table is not ready yet */ }
    }, 15000);
})();
