"""Security headers on every answer: no framing, no content sniffing, a Content-Security-Policy the pages run under, HSTS over https.

The policy allows scripts from this server only, plus Dash's own inline scripts by their hashes
(`app.csp_hashes()`: the renderer's start-up and the inline clientside callbacks), so an injected
script runs nowhere. Styles may be inline (React, Leaflet and Plotly set style attributes and
add style elements); images may come from the basemap's tile server (CITYBRAIN_TILE_URL).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

HSTS_SECONDS = 365 * 24 * 3600


def content_security_policy(script_hashes: list[str], tile_url: str = "") -> str:
    """The Content-Security-Policy of every answer."""
    tiles = _origin(tile_url)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *([tiles] if tiles else [])],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def _origin(url: str) -> str:
    """scheme://host[:port] of a tile URL template ({s}.tile.example becomes *.tile.example); "" if none."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    host = parts.netloc.rsplit("@", 1)[-1].replace("{s}", "*")
    return f"{parts.scheme}://{host}"


def install_security_headers(server: Flask, policy: str, *, https: bool) -> None:
    """Add the headers to every answer of `server` (HSTS only when served over https: CITYBRAIN_SECURE_COOKIES)."""
    fixed = {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Tile servers may ask for a Referer (OpenStreetMap's do): they get the origin, never a path.
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if https:
        fixed["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"

    def add_headers(response: Response) -> Response:
        for name, value in fixed.items():
            response.headers.setdefault(name, value)
        return response

    server.after_request(add_headers)
