/* CityBrain Command clientside code: map styles, live restyle, heat layer, live feed, clock.
 * One namespace, window.citybrain, referenced from Python with dash_extensions.javascript.Namespace
 * ("citybrain")("name") and from clientside callbacks as ClientsideFunction("citybrain", "name").
 * Geometry arrives once from /geo/units/...; everything here only changes styles and values.
 */
(function () {
    "use strict";

    var cb = window.citybrain = Object.assign({}, window.citybrain);
    // Clientside callbacks look functions up under window.dash_clientside.<namespace>: the same object.
    window.dash_clientside = Object.assign({}, window.dash_clientside, {citybrain: cb});
    var NO_UPDATE = function () { return window.dash_clientside.no_update; };

    // --- text into HTML ------------------------------------------------------------------------------
    // Leaflet (tooltips, popups, divIcons) reads a string as HTML, and names come from boundary files,
    // reports and administrators: every text that goes into an HTML string passes through here, so a
    // name like <img onerror=...> shows as the characters it is and never runs. (The other scripts
    // call window.citybrain.escapeHtml at call time.)
    var HTML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"};
    cb.escapeHtml = function (value) {
        if (value === null || value === undefined) { return ""; }
        return String(value).replace(/[&<>"']/g, function (c) { return HTML_ESCAPES[c]; });
    };
    var esc = cb.escapeHtml;

    // --- state shared between the map's functions and the callbacks -------------------------
    cb.map = null;              // the Leaflet map of the page (one per page)
    cb.unitLayers = {};         // unit id -> Leaflet layer of the choropleth, for restyling in place
    cb.markerLayers = {};       // incident id -> its marker while drawn (not in a cluster, in view)
    cb.live = {};               // style key -> newest {values, breaks, colours, head} pushed live
    cb.hideout = null;          // the hideout the unit layer was last built with
    cb.heatLayer = null;
    cb.pendingHeat = null;
    cb.lastRestyleMs = null;    // measured by the browser tests and the benchmark

    function whenMap(map) {
        if (map && cb.map !== map) {
            cb.map = map;
            map.on("zoomend moveend resize", scheduleDeclutter);
            // A permanent label opened later than its unitEach (a layer added or re-added to the map) is sorted too.
            map.on("tooltipopen", function (e) { if (e.tooltip.options.permanent) { scheduleDeclutter(); } });
            if (cb.pendingHeat) { var h = cb.pendingHeat; cb.pendingHeat = null; cb.drawHeat(h); }
        }
    }
    if (window.L && window.L.Map) {
        window.L.Map.addInitHook(function () { whenMap(this); });
    }

    // --- keeping dash-leaflet's GeoJSON layers on the URL they were last given -----------------
    // dash-leaflet ignores prop changes that arrive while a layer is still fetching its URL, and
    // applies them only at the layer's next prop change. A fast zoom (or a live refresh during the
    // first load) could leave the map on the previous level. So every layer notes which URL and
    // style key it was built with, and a layer that ends up on an older one is nudged (a new
    // hideout object) until it catches up; a few nudges at most, so an empty answer cannot loop.
    cb.want = {};
    cb.built = {};
    cb.MAX_NUDGES = 3;

    function noteBuilt(id, context) {
        if (!context) { return; }
        cb.built[id] = {url: context.url, key: context.hideout && context.hideout.key, at: Date.now()};
    }

    function behind(id) {
        var want = cb.want[id], built = cb.built[id];
        if (!want) { return false; }
        if (!want.url) { return !!(built && built.url); }  // should be empty, still shows an older answer
        if (!built) { return true; }
        return built.url !== want.url || (want.key !== undefined && built.key !== want.key);
    }

    cb.checkLayers = function () {
        Object.keys(cb.want).forEach(function (id) {
            var want = cb.want[id];
            var quietSince = Math.max(want.at, cb.built[id] ? cb.built[id].at : 0);
            if (!behind(id) || want.nudges >= cb.MAX_NUDGES || Date.now() - quietSince < 700) { return; }
            want.nudges += 1;
            cb.nudges = (cb.nudges || 0) + 1;
            var hideout = Object.assign({}, want.hideout || {}, {nudge: want.nudges});
            window.dash_clientside.set_props(id, {hideout: hideout});
        });
    };

    function watch(id, url, hideout) {
        var previous = cb.want[id];
        var nudged = hideout && hideout.nudge && previous && previous.url === url;
        cb.want[id] = {url: url, key: hideout ? hideout.key : undefined, hideout: hideout, at: Date.now(),
                       nudges: nudged ? previous.nudges : 0};
        setTimeout(cb.checkLayers, 900);
        setTimeout(cb.checkLayers, 2500);
    }

    // Clientside callbacks on each layer's url and hideout (their outputs are unused).
    cb.watchUnits = function (url, hideout) { watch("overview-units", url, hideout); return NO_UPDATE(); };
    cb.watchMarkers = function (url, hideout) { watch("overview-markers", url, hideout); return NO_UPDATE(); };

    // --- when the side panel's board and charts are read again ------------------------------------
    // They take a few hundred ms of server CPU at a million incidents: after the KPI cards, once the feed has
    // been quiet for BOARD_QUIET_MS (a burst of changes costs one read), at the latest every
    // BOARD_MAX_WAIT_MS, and at once when the scope changed. Setting overview-painted asks for them.
    cb.BOARD_QUIET_MS = 1000;
    cb.BOARD_MAX_WAIT_MS = 10000;
    cb.boardTimer = null;
    cb.boardWaitingSince = null;
    cb.boardScope = undefined;
    cb.boardDue = function (kpisAt) {
        if (!kpisAt) { return NO_UPDATE(); }
        var now = Date.now();
        var scopeChanged = cb.boardScope !== undefined && kpisAt.scope !== cb.boardScope;
        cb.boardScope = kpisAt.scope;
        if (cb.boardWaitingSince === null) { cb.boardWaitingSince = now; }
        clearTimeout(cb.boardTimer);
        var wait = scopeChanged ? 0 : Math.min(cb.BOARD_QUIET_MS, cb.boardWaitingSince + cb.BOARD_MAX_WAIT_MS - now);
        cb.boardTimer = setTimeout(function () {
            cb.boardTimer = null;
            cb.boardWaitingSince = null;
            cb.boardReads = (cb.boardReads || 0) + 1;
            window.dash_clientside.set_props("overview-painted", {data: Date.now()});
        }, Math.max(wait, 0));
        return NO_UPDATE();
    };

    // --- the next level's geometry, fetched while the page is idle -------------------------------
    // Each view names the finer level's geometry over its area (view.prefetch, a versioned URL the
    // browser keeps for good); the server reuses that area when the zoom-in comes, so dash-leaflet's
    // fetch of it is answered by the browser's cache and a change of level costs only the drawing.
    cb.prefetched = {};
    cb.prefetch = function (view) {
        var url = view && view.prefetch;
        if (!url || cb.prefetched[url]) { return NO_UPDATE(); }
        cb.prefetched[url] = true;
        var idle = window.requestIdleCallback || function (f) { return setTimeout(f, 200); };
        idle(function () {
            // cbPrefetch marks it for the benchmark's probe: idle work for the next step, not this one.
            fetch(url, {credentials: "same-origin", priority: "low", cbPrefetch: true}).then(function (r) {
                return r.ok ? r.arrayBuffer() : null;  // read to the end, so the cache holds it whole
            }).catch(function () { delete cb.prefetched[url]; });
        }, {timeout: 1000});
        return NO_UPDATE();
    };

    // --- the choropleth --------------------------------------------------------------------------
    function currentValues(hideout) {
        var pushed = cb.live[hideout.key];
        if (pushed && pushed.head >= (hideout.head || 0)) { return pushed; }
        return hideout;
    }

    function fillFor(value, breaks, colours, zero) {
        if (!value || value <= 0) { return zero; }
        for (var i = 0; i < breaks.length; i++) {
            if (value <= breaks[i]) { return colours[i]; }
        }
        return colours.length ? colours[colours.length - 1] : zero;
    }

    function inScope(props, hideout) {
        var scope = hideout.scope;
        if (!scope) { return true; }
        if (props.id === scope || props.district_id === scope || props.street_id === scope ||
            props.community_id === scope) { return true; }
        // An ancestor of the scope (a district while a street is chosen) stays lit.
        return (hideout.chain || []).indexOf(props.id) >= 0;
    }

    function styleOf(feature, hideout, current) {
        var props = feature.properties;
        var wall = hideout.theme === "wall";
        var value = current.values ? current.values[String(props.id)] : undefined;
        var lit = inScope(props, hideout);
        var chosen = props.id === hideout.scope;
        return {
            fillColor: fillFor(value, current.breaks || [], current.colours || [], hideout.zero),
            fillOpacity: lit ? 0.72 : 0.18,
            color: chosen ? (wall ? "#ffffff" : "#08306b") : (wall ? "#9fb3c8" : "#4a5a6a"),
            weight: chosen ? 3.5 : (hideout.level <= 2 ? 1.6 : 0.8),
            opacity: lit ? 0.9 : 0.35
        };
    }

    function labelOf(props, hideout, current) {
        var name = hideout.lang === "zh" ? (props.name_zh || props.name_en) : (props.name_en || props.name_zh);
        var value = current.values ? current.values[String(props.id)] : undefined;
        return esc(name) + " · " + esc(value || 0);
    }

    // --- permanent labels never overlap: a larger unit's label wins, a clashing one moves or hides --
    // Neighbouring districts' centres can sit close together (Yuzhong and Nan'an, Jiulongpo and
    // Dadukou), and the alerts' rings sit anywhere; overlapping labels are unreadable from metres away.
    // Largest unit first, each label takes the first free spot of a short ladder around its unit's
    // centre (on it, above, below, a step further, to either side) and hides when none is free, until
    // zooming in makes room.
    // A clashing label is hidden by a class (cb-label-clash, visibility: hidden !important), not by
    // its inline style: Leaflet's DivOverlay.update() - run by setTooltipContent on every live push and
    // whenever a tooltip opens - resets the inline visibility to "", so every hidden label showed again
    // on top of its neighbour until the next pass. New labels start hidden for the same reason: they
    // appear once a pass has found room for them, never on top of another first.
    function rectsOverlap(a, b) {
        return !(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top);
    }

    function shifted(box, dx, dy) {
        return {left: box.left + dx, right: box.right + dx, top: box.top + dy, bottom: box.bottom + dy};
    }

    // Room kept around each label: a live push may widen it by a digit before the next pass runs.
    var LABEL_MARGIN = 8;

    function padded(box) {
        return {left: box.left - LABEL_MARGIN, right: box.right + LABEL_MARGIN, top: box.top - LABEL_MARGIN / 2,
                bottom: box.bottom + LABEL_MARGIN / 2};
    }

    // Offsets (px) from the unit's centre a label may take, nearest first.
    function labelSpots(width, height) {
        var up = height + 4, far = height + 28, side = width / 2 + 26;
        return [[0, 0], [0, -up], [0, up], [0, -far], [0, far], [-side, 0], [side, 0]];
    }

    // The alerts' rings (warnings.js) are where the eye must go: a label never covers one, it moves.
    function alertBoxes() {
        var markers = cb.alertMarkers || {}, boxes = [];
        Object.keys(markers).forEach(function (id) {
            var el = markers[id]._map && markers[id].getElement();
            if (el) { boxes.push(el.getBoundingClientRect()); }
        });
        return boxes;
    }

    cb.declutterLabels = function () {
        var labels = [];
        Object.keys(cb.unitLayers).forEach(function (id) {
            var layer = cb.unitLayers[id];
            var tip = layer.getTooltip && layer.getTooltip();
            var el = tip && tip.options.permanent && tip.getElement && tip.getElement();
            if (!layer._map || !el || !layer.getBounds) { return; }
            var b = layer.getBounds();
            labels.push({tip: tip, el: el, size: (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth())});
        });
        labels.sort(function (a, b) { return b.size - a.size; });
        var taken = alertBoxes(), shown = 0, moved = 0;
        labels.forEach(function (label) {
            var box = label.el.getBoundingClientRect();
            var now = window.L.point(label.tip.options.offset || [0, 0]);
            var home = shifted(box, -now.x, -now.y);  // where the label sits with no offset
            var spot = null;
            labelSpots(box.right - box.left, box.bottom - box.top).some(function (offset) {
                var candidate = shifted(home, offset[0], offset[1]), room = padded(candidate);
                if (taken.some(function (other) { return rectsOverlap(room, other); })) { return false; }
                spot = {offset: offset, box: candidate};
                return true;
            });
            if (spot && (spot.offset[0] !== now.x || spot.offset[1] !== now.y)) {
                label.tip.options.offset = window.L.point(spot.offset[0], spot.offset[1]);
                label.tip.update();
            }
            label.el.classList.toggle("cb-label-clash", !spot);
            if (!spot) { return; }
            taken.push(spot.box);
            shown += 1;
            if (spot.offset[0] || spot.offset[1]) { moved += 1; }
        });
        cb.labelsShown = shown;
        cb.labelsMoved = moved;  // shown away from their unit's centre
        cb.labelsZoom = cb.map ? cb.map.getZoom() : null;  // which view the count belongs to
    };

    var declutterTimer = null;
    function scheduleDeclutter() {
        clearTimeout(declutterTimer);
        declutterTimer = setTimeout(cb.declutterLabels, 50);
    }
    cb.scheduleDeclutter = scheduleDeclutter;  // an alert's ring coming or going (warnings.js)

    cb.unitStyle = function (feature, context) {
        var hideout = (context && context.hideout) || {};
        return styleOf(feature, hideout, currentValues(hideout));
    };

    cb.unitEach = function (feature, layer, context) {
        var hideout = (context && context.hideout) || {};
        if (context && context.map) { whenMap(context.map); }
        cb.hideout = hideout;
        noteBuilt("overview-units", context);
        // Milliseconds since navigation when the map last drew a unit: the benchmark's "first paint".
        cb.unitsDrawnAt = performance.now();
        if (!cb.paintedSignalled) {
            // The map is up: now the page may fetch what can wait (the plotly charts).
            cb.paintedSignalled = true;
            setTimeout(function () { window.dash_clientside.set_props("overview-painted", {data: Date.now()}); }, 0);
        }
        cb.unitLayers[String(feature.properties.id)] = layer;
        var current = currentValues(hideout);
        // Districts and streets carry permanent labels with their value: the wall needs no hovering,
        // and with no basemap the names are what tells places apart.
        var permanent = hideout.labels === true;
        layer.bindTooltip(labelOf(feature.properties, hideout, current), {
            permanent: permanent,
            direction: "center",
            className: permanent ? "cb-unit-label cb-label-clash" : "cb-unit-tip",  // shown by the declutter pass
            opacity: 1
        });
        if (permanent) { scheduleDeclutter(); }
    };

    // Restyle the drawn units with values pushed live: setStyle in place, no rebuild, no geometry.
    cb.applyValues = function (pushed) {
        if (!pushed || !pushed.key) { return NO_UPDATE(); }
        var started = performance.now();
        cb.live = {};  // only the newest view's values matter; older views' would pile up on a desk that pans all day
        cb.live[pushed.key] = pushed;
        var hideout = cb.hideout;
        if (hideout && hideout.key === pushed.key) {
            var current = currentValues(hideout);
            Object.keys(cb.unitLayers).forEach(function (id) {
                var layer = cb.unitLayers[id];
                if (!layer._map || !layer.feature) { delete cb.unitLayers[id]; return; }
                layer.setStyle(styleOf(layer.feature, hideout, current));
                if (layer.getTooltip()) { layer.setTooltipContent(labelOf(layer.feature.properties, hideout, current)); }
            });
        }
        scheduleDeclutter();  // new values change the labels' widths
        cb.lastRestyleMs = performance.now() - started;
        cb.appliedHead = Math.max(cb.appliedHead || 0, pushed.head);
        return String(pushed.head);
    };

    // --- open incident markers ---------------------------------------------------------------------
    // On one shared canvas the layer drawn last is on top and takes the clicks, and the grids' geometry
    // and the markers are two fetches that race: grids arriving second would cover the markers. So the
    // markers get a pane of their own above the grids, drawn in SVG: Leaflet's SVG root lets clicks
    // beside a marker through to the grids' canvas, which a second canvas would swallow.
    var INCIDENT_PANE = "cb-incidents";

    function incidentRenderer(map) {
        if (!map) { return undefined; }
        if (!map.getPane(INCIDENT_PANE)) {
            map.createPane(INCIDENT_PANE).style.zIndex = 450;  // above overlayPane (400), below markers' icons (600)
        }
        if (!map.cbIncidentRenderer) { map.cbIncidentRenderer = window.L.svg({pane: INCIDENT_PANE}); }
        return map.cbIncidentRenderer;
    }

    cb.incidentPoint = function (feature, latlng, context) {
        noteBuilt("overview-markers", context);
        var p = feature.properties;
        var marker = window.L.circleMarker(latlng, {
            renderer: incidentRenderer(cb.map),
            radius: p.priority === 1 ? 8 : 6,
            fillColor: p.fill,
            fillOpacity: 0.95,
            color: p.ring || "#ffffff",
            weight: p.ring ? 3 : 1.2
        });
        var key = String(p.id);
        cb.markerLayers[key] = marker;
        // Forgotten once off the map (closed, clustered, out of view): a desk open all day keeps no old markers.
        marker.on("remove", function () { if (cb.markerLayers[key] === marker) { delete cb.markerLayers[key]; } });
        return marker;
    };

    cb.incidentCluster = function (feature, latlng, index, context) {
        noteBuilt("overview-markers", context);
        var n = feature.properties.point_count;
        var size = n < 10 ? 30 : (n < 100 ? 38 : 46);
        var icon = window.L.divIcon({
            html: "<div><span>" + esc(feature.properties.point_count_abbreviated) + "</span></div>",
            className: "cb-cluster",
            iconSize: window.L.point(size, size)
        });
        return window.L.marker(latlng, {icon: icon});
    };

    // --- the wall's screen ------------------------------------------------------------------------
    // Chart text is drawn by plotly in pixels; on a wall taller than 1080 px it is scaled to match the
    // CSS type (which follows the screen height). Only reported when it differs enough to matter.
    cb.screen = function (state) {
        if (!state || state.variant !== "wall") { return NO_UPDATE(); }
        var scale = Math.round((window.innerHeight / 1080) * 4) / 4;
        scale = Math.min(Math.max(scale, 0.75), 3);
        if (scale === (cb.lastScale || 1)) { return NO_UPDATE(); }
        cb.lastScale = scale;
        return {scale: scale};
    };

    // --- the heat layer (vendored Leaflet.heat) --------------------------------------------------
    cb.drawHeat = function (spec) {
        if (!spec) { return; }
        if (!cb.map) { cb.pendingHeat = spec; return; }
        if (!spec.url) {
            if (cb.heatLayer) { cb.map.removeLayer(cb.heatLayer); cb.heatLayer = null; }
            return;
        }
        fetch(spec.url, {credentials: "same-origin"}).then(function (r) {
            if (!r.ok) { throw new Error("heat " + r.status); }
            return r.json();
        }).then(function (data) {
            var size = cb.map.getSize();
            if (!size.x || !size.y) { return; }  // a hidden map cannot hold a canvas
            var options = {radius: spec.radius || 18, blur: spec.blur || 14, maxZoom: spec.maxZoom || 15,
                           max: Math.max(data.max || 1, 1), minOpacity: 0.25};
            if (!cb.heatLayer) {
                cb.heatLayer = window.L.heatLayer(data.points, options).addTo(cb.map);
            } else {
                cb.heatLayer.setOptions(options);
                cb.heatLayer.setLatLngs(data.points);
            }
            cb.heatPoints = data.points.length;
            cb.heatHead = data.head;
        }).catch(function (err) {
            cb.heatError = String(err);
        });
    };

    cb.heat = function (spec) {
        cb.drawHeat(spec);
        return NO_UPDATE();
    };

    // --- the live feed ---------------------------------------------------------------------------
    // One EventSource per page on /live/events, owned here rather than by a component: a browser
    // EventSource that lives as long as the page reconnects by itself with Last-Event-ID after a
    // network break or a server restart, so no change is lost and none is read twice.
    // (dash-extensions' EventSource component re-opens its connection on every re-render.)
    cb.stream = null;
    cb.streamUrl = null;
    cb.head = null;
    cb.heardAt = null;
    cb.openedAt = null;
    cb.liveState = {status: "connecting"};
    cb.STALE_AFTER_MS = 12000;

    function setLive(patch) {
        var previous = cb.liveState || {};
        var next = Object.assign({}, previous, patch);
        if (patch.status && patch.status !== previous.status) { next.since = Date.now(); }
        cb.liveState = next;
        if (patch.status && patch.status !== previous.status && window.dash_clientside.set_props) {
            window.dash_clientside.set_props("overview-live", {data: next});
        }
    }

    // Ask the page to re-read its values, at most once per MIN_REFRESH_MS: a burst of changes
    // becomes one refresh now and one for the newest head when the interval has passed.
    cb.MIN_REFRESH_MS = 500;
    cb.pendingRefresh = null;
    function refresh(head, extra) {
        cb.head = head;
        var wait = (cb.refreshAskedAt || 0) + cb.MIN_REFRESH_MS - Date.now();
        if (wait > 0) {
            if (!cb.pendingRefresh) { cb.pendingRefresh = setTimeout(function () { cb.pendingRefresh = null; refresh(cb.head); }, wait); }
            return;
        }
        cb.refreshAskedAt = Date.now();
        cb.refreshes = (cb.refreshes || 0) + 1;
        window.dash_clientside.set_props("overview-refresh", {data: Object.assign({head: head, at: Date.now()}, extra || {})});
    }

    // The server now runs other code than this page was built with (an upgrade while the wall
    // stayed open): its callbacks would fail, so load the page afresh, once.
    function checkBuild(build) {
        if (build && cb.build && build !== cb.build && !cb.reloading) {
            cb.reloading = true;
            setTimeout(function () { window.location.reload(); }, 500);
        }
    }

    // Boundaries were imported (the units version moved): the map asks for its view again, whose
    // geometry URL names the new version, so the browser fetches the new outlines and names.
    function checkUnits(units) {
        if (!units) { return; }
        if (cb.units && units !== cb.units && window.dash_clientside.set_props) {
            window.dash_clientside.set_props("overview-units-version", {data: units});
        }
        cb.units = units;
    }

    function onMessage(event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        checkBuild(data.build);
        checkUnits(data.units);
        cb.heardAt = Date.now();
        cb.messages = (cb.messages || 0) + 1;
        setLive({status: data.ok === false ? "stale" : "live", head: data.head});
        if ((data.type === "changes" || data.type === "reset") && data.head !== cb.head) {
            refresh(data.head, {count: data.count || 0});
        } else if (typeof data.head === "number" && cb.head === null) {
            cb.head = data.head;
        }
    }

    function connect(after) {
        var source = new EventSource(cb.streamUrl + "?after=" + after);
        cb.stream = source;
        cb.openedAt = Date.now();
        cb.connections = (cb.connections || 0) + 1;
        source.onmessage = onMessage;
        source.onerror = function () {
            // CONNECTING: the browser retries by itself. CLOSED: it gave up (the server refused the
            // stream: signed out, or the store is down); ask the head now, so a revoked kiosk reaches
            // the sign-in page (a 401) and a wall turns stale at once; poll() opens a new stream later.
            if (source.readyState === 2 && cb.stream === source) {
                cb.stream = null;
                askHead();
            }
        };
    }

    // The feed's head by a plain request (refresh when it moved; "polling", or "stale" when even this
    // fails). A 401 here is what sends a signed-out screen to the sign-in page (auth.js).
    function askHead() {
        fetch("/live/head", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
            if (!r.ok) { throw new Error("head " + r.status); }
            return r.json();
        }).then(function (body) {
            checkBuild(body.build);
            checkUnits(body.units);
            if (body.head !== cb.head) { refresh(body.head, {polled: true}); }
            setLive({status: "polling", head: body.head});
        }).catch(function () {
            setLive({status: "stale"});
        });
    }

    cb.closeStream = function () {
        if (cb.stream) { cb.stream.close(); }
        cb.stream = null;
    };

    // A page left for another keeps its stream open while the browser holds it in its back/forward
    // cache; a few such pages use up the browser's six connections to this server (HTTP/1.1) and
    // every later request of the app waits. So the stream closes when the page is hidden, and
    // reopens from the last head seen when the page is shown again from that cache.
    window.addEventListener("pagehide", function () { cb.closeStream(); });
    window.addEventListener("pageshow", function (event) {
        if (event.persisted && cb.streamUrl && !cb.stream) { connect(cb.head || 0); }
    });

    // Clientside callback on the page's stream store {url, head}: (re)open the feed from the page's head.
    cb.openStream = function (spec) {
        if (!spec || !spec.url || typeof EventSource === "undefined") { return NO_UPDATE(); }
        cb.closeStream();
        cb.paintedSignalled = false;  // a new page (or language): its charts wait for its map again
        cb.streamUrl = spec.url;
        cb.head = spec.head;
        cb.build = spec.build;
        cb.units = spec.units || null;
        cb.heardAt = null;
        cb.pageOpenedAt = Date.now();
        cb.liveState = {status: "connecting", head: spec.head, since: Date.now()};
        connect(spec.head);
        return cb.liveState;
    };

    // Every few seconds: while the stream has been silent too long, fall back to polling /live/head
    // (refresh when the feed moved; the indicator says "polling", or "stale" when even that fails)
    // and now and then open the stream again from the last head seen.
    cb.poll = function () {
        if (!cb.streamUrl) { return NO_UPDATE(); }
        var now = Date.now();
        // Silence counts from the last message heard, or from the page's first stream when none came yet
        // (not from the last reconnect: those happen every STALE_AFTER_MS and would hold polling off).
        var silentFor = now - (cb.heardAt || cb.pageOpenedAt || now);
        if (silentFor < cb.STALE_AFTER_MS) { return NO_UPDATE(); }
        askHead();
        if (!cb.stream || now - cb.openedAt >= cb.STALE_AFTER_MS) {
            cb.closeStream();
            connect(cb.head || 0);
        }
        return NO_UPDATE();
    };

    // --- the clock and the live indicator, once a second --------------------------------------
    // "2025-03-03 16:00:05" (or just the time) in the city's zone, whatever the browser's own zone is.
    function fmt(ms, tz, lang, withDate) {
        var options = {hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: tz,
                       year: "numeric", month: "2-digit", day: "2-digit"};
        var parts = {};
        try {
            new Intl.DateTimeFormat("en-CA", options).formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
        } catch (e) {
            return new Date(ms).toISOString().replace("T", " ").substring(0, withDate ? 19 : 19).substring(withDate ? 0 : 11);
        }
        var time = parts.hour + ":" + parts.minute + ":" + parts.second;
        return withDate ? parts.year + "-" + parts.month + "-" + parts.day + " " + time : time;
    }
    cb.formatTime = fmt;

    cb.tick = function (n, live, config) {
        cb.checkLayers();
        config = config || {};
        var tz = config.tz || "Asia/Shanghai";
        var lang = config.lang || "en";
        var words = config.words || {};
        var state = cb.liveState || live || {};
        var status = state.status || "connecting";
        var label = words[status] || status;
        var since = state.since ? " " + (words.since || "since") + " " + fmt(state.since, tz, lang, false) : "";
        return [fmt(Date.now(), tz, lang, true), label + since, "cb-live cb-live-" + status];
    };
})();
