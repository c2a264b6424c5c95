/* CityBrain Command, early warnings (预测预警): the alerts' rings on the map, flying the map to an alert
 * clicked in the list, and the cheap poll of /alerts/head that redraws the panel when any alert changed.
 * Adds to the one namespace, window.citybrain (see citybrain.js); the map layer's point function is
 * referenced as Namespace("citybrain")("alertPoint"), the callbacks as ClientsideFunction("citybrain", ...).
 * Everything reads window.citybrain at call time: citybrain.js may have replaced the object since.
 */
(function () {
    "use strict";

    var cb = window.citybrain = window.citybrain || {};
    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.citybrain = cb;
    var NO_UPDATE = function () { return window.dash_clientside.no_update; };
    function ns() { return window.citybrain; }

    // --- the rings -----------------------------------------------------------------------------------
    // A numbered ring per alert (the number is its rank on the list); open alerts pulse (CSS animation,
    // stilled for users who ask for reduced motion). DOM markers, not canvas: there are a few dozen at most.
    cb.alertPoint = function (feature, latlng) {
        var p = feature.properties || {};
        var size = p.rank <= 3 ? 40 : 32;
        var esc = ns().escapeHtml;  // a divIcon's html is HTML: nothing goes in unescaped (citybrain.js)
        var html = '<span class="cb-alert-ring" style="border-color:' + esc(p.colour) + ';"></span>' +
                   '<span class="cb-alert-dot" style="background:' + esc(p.colour) + ';">' + esc(p.rank) + '</span>';
        var marker = window.L.marker(latlng, {
            icon: window.L.divIcon({
                html: html,
                className: "cb-alert-marker" + (p.pulse ? " cb-alert-pulse" : ""),
                iconSize: window.L.point(size, size)
            }),
            keyboard: false,
            zIndexOffset: 1000 - (p.rank || 0)
        });
        var own = ns(), key = String(p.id);
        own.alertMarkers = own.alertMarkers || {};
        own.alertMarkers[key] = marker;
        // Labels make way for rings (citybrain.js): place them again when a ring comes or goes. A ring off
        // the map is forgotten, so a wall that runs for weeks keeps only the rings it shows.
        marker.on("add remove", function (e) {
            var markers = ns().alertMarkers || {};
            if (e.type === "remove" && markers[key] === marker) { delete markers[key]; }
            if (ns().scheduleDeclutter) { ns().scheduleDeclutter(); }
        });
        // A click on a ring brings its alert into view in the list and marks it for a moment.
        marker.on("click", function () {
            var item = document.querySelector(".cb-alert[data-alert='" + p.id + "']");
            if (!item) { return; }
            item.scrollIntoView({block: "nearest"});
            item.classList.add("cb-alert-picked");
            setTimeout(function () { item.classList.remove("cb-alert-picked"); }, 3000);
        });
        return marker;
    };

    // --- a click on the list flies the map there ---------------------------------------------------------
    cb.ALERT_FOCUS_ZOOM = 15;

    function triggeredAlert() {
        var context = window.dash_clientside.callback_context;
        var fired = context && context.triggered && context.triggered[0];
        if (!fired || !fired.value) { return null; }  // a button drawn anew, not clicked
        var raw = fired.prop_id.slice(0, fired.prop_id.lastIndexOf("."));
        try { return JSON.parse(raw).index; } catch (e) { return null; }
    }

    cb.alertFocus = function (clicks, points) {
        var id = triggeredAlert();
        var own = ns();
        var at = id !== null && points ? points[String(id)] : null;
        if (!at || !own.map) { return NO_UPDATE(); }
        var zoom = Math.max(own.map.getZoom() || 0, own.ALERT_FOCUS_ZOOM || 15);
        own.map.flyTo(at, zoom, {duration: 0.6});
        var marker = (own.alertMarkers || {})[String(id)];
        var element = marker && marker.getElement && marker.getElement();
        if (element) {
            element.classList.add("cb-alert-focused");
            setTimeout(function () { element.classList.remove("cb-alert-focused"); }, 4000);
        }
        own.alertFocusedAt = Date.now();
        return {id: id, at: Date.now()};
    };

    // --- the poll: one small GET every few seconds, a redraw only when an alert changed -------------
    // Ages ("12 min ago") are redrawn once a minute even when nothing changed.
    cb.ALERTS_AGE_REFRESH_MS = 60000;
    cb.ALERTS_STALE_AFTER_MS = 12000;  // this long without an answer from /alerts/head: say the list may be old

    function showStale(stale) {
        var badge = document.getElementById("alerts-stale");
        if (badge) { badge.hidden = !stale; }
    }

    cb.alertsPoll = function (n, watch) {
        var own = ns();
        if (!watch || !watch.url) { return NO_UPDATE(); }
        if (own.alertsPage !== watch.page) {  // a new page (or language): start from its own head
            own.alertsPage = watch.page;
            own.alertsHead = watch.head;
            own.alertsDrawnAt = Date.now();
            own.alertsOkAt = Date.now();
        }
        if (own.alertsPolling) { return NO_UPDATE(); }
        own.alertsPolling = true;
        fetch(watch.url, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
            if (!r.ok) { throw new Error("alerts head " + r.status); }
            return r.json();
        }).then(function (body) {
            own.alertsOkAt = Date.now();
            showStale(false);
            var changed = body.head !== own.alertsHead;
            var old = Date.now() - (own.alertsDrawnAt || 0) >= own.ALERTS_AGE_REFRESH_MS;
            var target = watch.target || "alerts-refresh";
            // Stores draw no element: the page's root says whether this page is still the one shown.
            if ((changed || old) && document.getElementById(watch.root || "alerts-panel")) {
                own.alertsHead = body.head;
                own.alertsDrawnAt = Date.now();
                own.alertsRefreshes = (own.alertsRefreshes || 0) + 1;
                window.dash_clientside.set_props(target, {data: {head: body.head, at: Date.now()}});
            }
        }).catch(function (err) {
            own.alertsError = String(err);
            showStale(Date.now() - (own.alertsOkAt || 0) >= own.ALERTS_STALE_AFTER_MS);
        }).then(function () {
            own.alertsPolling = false;
        });
        return NO_UPDATE();
    };
})();
