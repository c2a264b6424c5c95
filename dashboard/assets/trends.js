/* CityBrain Command, the leaders' review map (/trends): units coloured by the chosen rate, a tooltip each,
 * and a click that opens the review scoped to the unit (the same link as its name in the areas table).
 * Adds to the one namespace, window.citybrain (see citybrain.js); referenced from Python as
 * Namespace("citybrain")("trendsRateStyle" | "trendsRateEach" | "trendsRateFilter").
 * The colour rule is layers/rate_choropleth.py's colour_of.
 */
(function () {
    "use strict";

    var cb = window.citybrain = window.citybrain || {};

    function hideoutOf(context) { return (context && context.hideout) || {}; }

    function colourOf(rate, hideout) {
        if (rate === null || rate === undefined) { return hideout.none; }
        var breaks = hideout.breaks || [], colours = hideout.colours || [];
        for (var i = 0; i < breaks.length; i++) {
            if (rate < breaks[i]) { return colours[i]; }
        }
        return colours[colours.length - 1];
    }

    // Only the units of the review's scope are drawn; the route may send their neighbours too (bbox).
    cb.trendsRateFilter = function (feature, context) {
        var values = hideoutOf(context).values || {};
        return Object.prototype.hasOwnProperty.call(values, String(feature.properties.id));
    };

    cb.trendsRateStyle = function (feature, context) {
        var hideout = hideoutOf(context);
        var id = String(feature.properties.id);
        return {
            fillColor: colourOf((hideout.values || {})[id], hideout),
            fillOpacity: 0.85,
            color: "#4d4d4d",
            weight: 1,
            // A class per unit: tests and stylesheets can find one unit's shape.
            className: "cb-trends-unit cb-trends-unit-" + id
        };
    };

    cb.trendsRateEach = function (feature, layer, context) {
        var hideout = hideoutOf(context);
        var id = String(feature.properties.id);
        var ns = window.citybrain;
        // What the map shows, readable by tests: the rate and fill of each unit drawn for this review.
        if (ns.trendsMapHideout !== hideout) { ns.trendsMapHideout = hideout; ns.trendsMapDrawn = {}; }
        var rate = (hideout.values || {})[id];
        ns.trendsMapDrawn[id] = {rate: rate === undefined ? null : rate, fill: colourOf(rate, hideout)};
        // Leaflet reads a tooltip string as HTML; the label holds the unit's name (citybrain.js escapeHtml).
        layer.bindTooltip(ns.escapeHtml((hideout.labels || {})[id]), {sticky: true, className: "cb-unit-tip"});
        layer.on("click", function () {
            var link = (hideout.links || {})[id];
            if (link) { window.location.assign(link); }
        });
    };
}());
