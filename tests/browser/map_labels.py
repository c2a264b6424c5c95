"""JavaScript expressions the browser tests use to see the map's permanent labels as a viewer does."""

# The permanent labels a viewer sees (a clashing one is hidden by a class, so ask the computed style).
SHOWN_LABELS = (
    "[...document.querySelectorAll('.cb-unit-label')].filter(e => e.isConnected && getComputedStyle(e).visibility !== 'hidden')"
)
# A function of two DOMRects: whether they overlap (touching edges do not).
OVERLAP = "((a, b) => !(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top))"
# Pairs of shown labels (their texts) whose boxes overlap, now.
OVERLAPPING_LABELS = (
    f"(() => {{ const shown = {SHOWN_LABELS}.map(e => [e.textContent, e.getBoundingClientRect()]), out = [];"
    " shown.forEach(([ta, a], i) => shown.slice(i + 1).forEach(([tb, b]) => {"
    f"  if ({OVERLAP}(a, b)) {{ out.push([ta, tb]); }} }}));"
    " return out; })()"
)
# The texts of shown labels whose box meets an alert's ring.
LABELS_ON_RINGS = (
    "(() => { const rings = [...document.querySelectorAll('.cb-alert-marker')].map(e => e.getBoundingClientRect());"
    f" return {SHOWN_LABELS}.filter(e => rings.some(b => {OVERLAP}(e.getBoundingClientRect(), b))).map(e => e.textContent); }})()"
)
