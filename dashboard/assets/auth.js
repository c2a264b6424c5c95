/* Signed out while a screen is open (session ended, user deactivated, kiosk link revoked): the server
 * answers 401 with X-CityBrain-Signed-Out; show the sign-in page instead of a screen that silently
 * stops updating. Loaded before the other scripts (assets load in name order), so every fetch -
 * Dash's callbacks and the live polling alike - passes through here. */
(function () {
    if (!window.fetch || window.__citybrainAuthWrapped) { return; }
    window.__citybrainAuthWrapped = true;
    var original = window.fetch.bind(window);
    var leaving = false;
    window.fetch = function () {
        return original.apply(null, arguments).then(function (response) {
            if (response.status === 401 && response.headers.get("X-CityBrain-Signed-Out") && !leaving) {
                leaving = true;
                var here = window.location.pathname + window.location.search;
                window.location.assign("/login?why=ended&next=" + encodeURIComponent(here));
            }
            return response;
        });
    };
})();
