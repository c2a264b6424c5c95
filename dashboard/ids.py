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
OVERVIEW_UNITS_VERSION = "overview-units-version"  # the units version: set anew by citybrain.js when boundaries change
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
OVERVIEW_KPIS_AT = "overview-kpis-at"  # {head}: the KPI cards were refreshed; the board and charts follow

# The dispatcher's desk (`/dispatch`, 一键调度).
DISPATCH_ROOT = "dispatch-root"
DISPATCH_GRID = "dispatch-grid"  # the queue (dash-ag-grid)
DISPATCH_FILTER_AREA = "dispatch-filter-area"
DISPATCH_FILTER_CATEGORY = "dispatch-filter-category"
DISPATCH_FILTER_PRIORITY = "dispatch-filter-priority"
DISPATCH_FILTER_STATE = "dispatch-filter-state"
DISPATCH_KPIS = "dispatch-kpis"
DISPATCH_KPI = "dispatch-kpi"  # pattern id {"type": DISPATCH_KPI, "index": queue_counts key}
DISPATCH_COUNT = "dispatch-count"  # "n in the queue"
DISPATCH_BATCH = "dispatch-batch"  # dispatch the selected rows to their suggestions
DISPATCH_PANEL = "dispatch-panel"  # the incident panel's body
DISPATCH_TO = "dispatch-to"  # pattern id {"type": DISPATCH_TO, "index": "department:3" | "worker:7"}
DISPATCH_OTHER = "dispatch-other"  # pattern id {"type": DISPATCH_OTHER, "index": incident id}: another department
DISPATCH_OTHER_GO = "dispatch-other-go"  # pattern id, the same index: send to it
DISPATCH_ACTION = "dispatch-action"  # pattern id {"type": DISPATCH_ACTION, "index": lifecycle action}
DISPATCH_MERGE = "dispatch-merge"  # pattern id {"type": DISPATCH_MERGE, "index": the other incident's id}
DISPATCH_PROMPT = "dispatch-prompt"  # the reason prompt of actions that need one
DISPATCH_PROMPT_LABEL = "dispatch-prompt-label"
DISPATCH_REASON = "dispatch-reason"
DISPATCH_EXTEND_HOURS = "dispatch-extend-hours"
DISPATCH_PROMPT_OK = "dispatch-prompt-ok"
DISPATCH_PROMPT_CANCEL = "dispatch-prompt-cancel"
DISPATCH_MESSAGE = "dispatch-message"
DISPATCH_UNDO_BAR = "dispatch-undo-bar"
DISPATCH_UNDO = "dispatch-undo"
DISPATCH_LANG_SWITCH = "dispatch-lang-switch"
DISPATCH_LIVE_STATUS = "dispatch-live-status"
DISPATCH_RATE = "dispatch-rate"  # pattern id {"type": DISPATCH_RATE, "index": satisfaction 1-5}
DISPATCH_CENTRE_BADGE = "dispatch-centre-badge"  # the header button: unread answers of departments
DISPATCH_CENTRE = "dispatch-centre"  # the list of departments' answers (部门报到), toggled by the badge
DISPATCH_CENTRE_LIST = "dispatch-centre-list"
DISPATCH_CENTRE_ITEM = "dispatch-centre-item"  # pattern id {"type": DISPATCH_CENTRE_ITEM, "index": "<answer id>:<incident id>"}
DISPATCH_CENTRE_READ = "dispatch-centre-read"  # "mark all read"
DISPATCH_CENTRE_SEEN = "dispatch-centre-seen"  # {at}: bumped when answers were marked read

# Invisible plumbing of the desk.
DISPATCH_SELECTED = "dispatch-selected"  # {id}: the incident the panel shows
DISPATCH_CURRENT = "dispatch-current"  # {id, version, state}: as the panel last drew it (expected version of actions)
DISPATCH_CLICK = "dispatch-click"  # {id, version, at}: the case as shown when a desk button was clicked, and when (dispatch.js)
DISPATCH_PENDING = "dispatch-pending"  # {action}: the action waiting for its reason
DISPATCH_ACTED = "dispatch-acted"  # {at}: bumped after an action so this page redraws at once
DISPATCH_UNDO_STATE = "dispatch-undo-state"  # {incident_id, until}: the dispatch that can still be undone
DISPATCH_STAMPS = "dispatch-stamps"  # {row id: version and clock}: what the queue table holds, for row diffs
DISPATCH_DELTA = "dispatch-delta"  # {ids, rows}: the queue rows of the incidents a change touched (applied in dispatch.js)
DISPATCH_WHOLE = "dispatch-whole"  # {at}: read the whole queue again and send the rows that differ from the stamps
DISPATCH_STREAM = "dispatch-stream"  # {url, head}: where dispatch.js follows the change feed
DISPATCH_REFRESH = "dispatch-refresh"  # {head}: bumped by dispatch.js when the feed moved
DISPATCH_PANEL_REFRESH = "dispatch-panel-refresh"  # DISPATCH_REFRESH passed on when it may touch the panel's incident
DISPATCH_CONFIG = "dispatch-config"  # {lang, tz, actor, words}: what callbacks and the clientside code need
DISPATCH_TICK = "dispatch-tick"  # half-second tick for the undo countdown
DISPATCH_FOLLOWING = "dispatch-following"  # written by the clientside follower (status)

# Early warnings (预测预警): the alerts panel on the overview and the wall, and the /warnings page.
ALERTS_PANEL = "alerts-panel"
ALERTS_LIST = "alerts-list"
ALERTS_COUNT = "alerts-count"
ALERTS_LAYER = "alerts-layer"  # the map layer of numbered, pulsing rings
ALERTS_FOCUS = "alerts-focus"  # pattern id {"type": ALERTS_FOCUS, "index": alert id}: fly the map to it
ALERTS_ACK = "alerts-ack"  # pattern id, the same index: acknowledge (确认)
ALERTS_DISMISS = "alerts-dismiss"  # pattern id: dismiss (忽略), opens the reason prompt
ALERTS_CASE = "alerts-case"  # pattern id: turn into a case (立案)
ALERTS_MESSAGE = "alerts-message"
ALERTS_PROMPT = "alerts-prompt"
ALERTS_PROMPT_LABEL = "alerts-prompt-label"
ALERTS_REASON = "alerts-reason"
ALERTS_PROMPT_OK = "alerts-prompt-ok"
ALERTS_PROMPT_CANCEL = "alerts-prompt-cancel"
ALERTS_WATCH = "alerts-watch"  # {url, head, page}: where warnings.js polls the alerts head
ALERTS_REFRESH = "alerts-refresh"  # {head}: bumped when the alerts changed (or an action ran)
ALERTS_POINTS = "alerts-points"  # {alert id: [lat, lon]}: where a click on the list flies the map
ALERTS_PENDING = "alerts-pending"  # {id}: the alert waiting for its dismiss reason
ALERTS_FOCUSED = "alerts-focused"  # written by the clientside focus (the alert flown to)
ALERTS_POLLED = "alerts-polled"  # output slot of the clientside poller
ALERTS_POLL = "alerts-poll"
ALERTS_STALE = "alerts-stale"  # "may be out of date", shown while the alerts head cannot be reached

# The early-warning page (`/warnings`): every alert, and sensitivity per category.
WARNINGS_ROOT = "warnings-root"
WARNINGS_KIND = "warnings-kind"
WARNINGS_STATUS = "warnings-status"
WARNINGS_TABLE = "warnings-table"
WARNINGS_SETTINGS = "warnings-settings"  # dash-ag-grid of categories: sensitivity and enabled
WARNINGS_MESSAGE = "warnings-message"
WARNINGS_CONFIG = "warnings-config"  # {lang}
WARNINGS_LANG_SWITCH = "warnings-lang-switch"
