"""The statistics the detectors share (Poisson and negative binomial tails, thresholds) and how their figures read."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from scipy.special import betainc, pdtrc

PARTS_OF_DAY = [(0, "night", "凌晨"), (6, "morning", "上午"), (12, "afternoon", "下午"), (18, "evening", "晚间")]
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def log10_p(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """-log10 of the Poisson upper tail P(X >= observed | expected)."""
    p = pdtrc(observed - 1, np.maximum(expected, 1e-12))
    return -np.log10(np.maximum(p, 1e-300))


def log10_p_nb(observed: np.ndarray, expected: np.ndarray, cv: float) -> np.ndarray:
    """-log10 of the negative binomial upper tail P(X >= observed) with mean `expected` and variance
    expected + (cv * expected)^2: Poisson noise plus day-to-day swings of the level (weather, events)."""
    size = 1.0 / cv**2
    p = betainc(np.maximum(observed, 1e-9), size, np.maximum(expected, 1e-12) / (size + np.maximum(expected, 1e-12)))
    return -np.log10(np.maximum(p, 1e-300))


def p_text(log10_p: float) -> str:
    p = 10 ** (-log10_p)
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def expected_text(value: float) -> str:
    """An expected count as people read it: 4.1, 0.35, 0.004."""
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def local_when(now: float, tz: ZoneInfo) -> tuple[str, str]:
    local = datetime.fromtimestamp(now, tz)
    part = [p for p in PARTS_OF_DAY if local.hour >= p[0]][-1]
    return f"{WEEKDAYS_EN[local.weekday()]} {part[1]}", f"{WEEKDAYS_ZH[local.weekday()]}{part[2]}"


def threshold(base: float, sensitivity: np.ndarray) -> np.ndarray:
    return base / np.where(sensitivity > 0, sensitivity, np.inf)
