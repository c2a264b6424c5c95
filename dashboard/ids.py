"""Component ids: one constant per element callbacks and tests address, kebab-case `<area>-<thing>`."""

# The shell around every page.
SHELL_LOCATION = "shell-location"
SHELL_PAGE = "shell-page"
SHELL_LANG = "shell-lang"  # the chosen language, kept in the browser's local storage
SHELL_CARRY = "shell-carry"  # what a page hands to its own re-render (a language switch keeps the view)

# The one-screen overview (desk `/` and wall `/wall`).
OVERVIEW_ROOT = "overview-root"
OVERVIEW_MAP = "overview-map"
OVERVIEW_UNITS = "overview-units"  # the choropleth GeoJSON layer of administrative units
OVERVIEW_MARKERS = "overview-markers"  # open incidents in view, clustered
OVERVIEW_SELECTED = "overview-selected"  # outline of the unit the screen is scoped to
OVERVIEW_LEGEND = "overview-legend"
OVERVIEW_METRIC = "overview-metric"
OVERVIEW_HEAT_WINDOW = "overview-heat-window"
OVERVIEW_LANG_SWITCH = "overview-lang-switch"
OVERVIEW_BREADCRUMB = "overview-breadcrumb"
OVERVIEW_CRUMB = "overview-crumb"  # pattern id {"type": OVERVIEW_CRUMB, "index": unit id or 0 for the city}
OVERVIEW_SCOPE_TITLE = "overview-scope-title"
OVERVIEW_KPIS = "overview-kpis"
OVERVIEW_KPI = "overview-kpi"  # pattern id {"type": OVERVIEW_KPI, "index": kpi key}
OVERVIEW_BOARD = "overview-board"
OVERVIEW_TREND = "overview-trend"  # the plotly graph, inside its slot
OVERVIEW_TREND_SLOT = "overview-trend-slot"
OVERVIEW_BREAKDOWN = "overview-breakdown"
OVERVIEW_BREAKDOWN_SLOT = "overview-breakdown-slot"
OVERVIEW_SECTORS = "overview-sectors"
OVERVIEW_CLOCK = "overview-clock"
OVERVIEW_AS_OF = "overview-as-of"
OVERVIEW_LIVE_STATUS = "overview-live-status"
OVERVIEW_CARD = "overview-card"
OVERVIEW_CARD_BODY = "overview-card-body"
OVERVIEW_CARD_CLOSE = "overview-card-close"

# Invisible plumbing of the overview.
OVERVIEW_STATE = "overview-state"  # {scope, metric, heat, lang}: what the user chose
OVERVIEW_VIEW = "overview-view"  # {level, bbox}: what the map shows, derived from zoom and bounds
OVERVIEW_VALUES = "overview-values"  # {key, values}: live choropleth values applied by setStyle
OVERVIEW_HEAT = "overview-heat"  # {url}: where the heat layer fetches its points
OVERVIEW_STREAM = "overview-stream"  # {url, head}: where window.citybrain opens its EventSource on /live/events
OVERVIEW_LIVE = "overview-live"  # {status, since, head}: the change feed as the page sees it
OVERVIEW_REFRESH = "overview-refresh"  # {head}: bumped when the page must re-read values
OVERVIEW_POLL = "overview-poll"  # polling fallback when server push is silent
OVERVIEW_TICK = "overview-tick"  # one-second tick for the clock and the live indicator
OVERVIEW_CLOCK_CONFIG = "overview-clock-config"  # {tz, lang, words}: what the clientside clock needs
OVERVIEW_APPLIED = "overview-applied"  # head of the last values applied by the clientside restyle
OVERVIEW_HEAT_DRAWN = "overview-heat-drawn"  # written by the clientside heat layer once it drew
OVERVIEW_UNITS_WATCH = "overview-units-watch"  # written by nobody: output slot of the units layer's watcher
OVERVIEW_MARKERS_WATCH = "overview-markers-watch"  # the same for the markers layer
OVERVIEW_SCREEN = "overview-screen"  # {scale}: the wall's screen height against 1080 px, for chart text
OVERVIEW_PAINTED = "overview-painted"  # set by citybrain.js once the map first drew: the charts may load now
