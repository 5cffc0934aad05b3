"""The height-for-age chart, drawn server-side as SVG (no script, no external file).

Curves come from the CDC 2000 stature-for-age LMS table in `service.record.growth`: the height at
a given z is M·(1 + L·S·z)^(1/L) (M·e^(S·z) when L = 0). Drawn: the 3rd, 50th and 97th centiles,
the height limit of the policy in force (`policy_limit`: −2.25 SD under the primary plan, −3.0 SD under
the FDA label; no line when the policy's limit is not known), and the child's measured heights. Colours are SVG
presentation attributes (not `style`), so the page's Content-Security-Policy can forbid inline styles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import datetime
from statistics import NormalDist
from typing import Iterable
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from service.record.growth import MAX_MONTHS, MIN_MONTHS, lms_at

Z_P3 = NormalDist().inv_cdf(0.03)      # −1.881

# (css class, z, label, stroke, dash)
CURVES = (
    ("centile centile-97", -Z_P3, "97th", "#61788c", None),
    ("centile centile-50", 0.0, "50th", "#2f4858", None),
    ("centile centile-3", Z_P3, "3rd", "#61788c", None),
)
LIMIT_STROKE = "#b3261e"


@dataclass(frozen=True)
class Limit:
    z: float
    label: str                          # "policy limit (−2.25 SD)", "label limit (−3.0 SD)"


def sd_text(z: float) -> str:
    """-2.25 → '−2.25', -3 → '−3.0' (one decimal at least, as the sources write them)."""
    text = f"{z:.2f}"
    return (text[:-1] if text.endswith("0") else text).replace("-", "\u2212")


def policy_limit(policy) -> Limit | None:
    """The height-SDS limit of the policy in force (its initial height criterion), or None when the
    policy has none or its value is not known (the chart then draws no limit line)."""
    spec = next((c for c in policy.initial if c["type"] == "height_sds"), None)
    if spec is None or spec.get("threshold") is None:
        return None
    who = "label" if policy.kind == "label" else "policy"
    return Limit(spec["threshold"], f"{who} limit ({sd_text(spec['threshold'])} SD)")


def limit_caption(limit: Limit | None) -> str:
    """The chart's caption: what the limit line is, or that there is none."""
    base = "Height for age against the CDC 2000 reference: 3rd, 50th and 97th centiles"
    if limit is None:
        return base + "; the height limit of the policy in force is not known, so no limit line is drawn."
    return f"{base}, and the {limit.label} (dashed)."

WIDTH, HEIGHT = 760, 460
LEFT, RIGHT, TOP, BOTTOM = 60, 96, 40, 54


@dataclass(frozen=True)
class Point:
    age_years: float
    height_cm: float
    date: datetime.date | None
    sds: float | None = None
    centile: float | None = None


def height_at(sex: str, age_years: float, z: float) -> float | None:
    """Height (cm) at SDS `z` for a sex and age, or None outside the 2–20 year table."""
    lms = lms_at(sex, age_years * 12)
    if lms is None:
        return None
    l, m, s = lms
    if l == 0:
        return m * math.exp(s * z)
    base = 1 + l * s * z
    return m * base ** (1 / l) if base > 0 else None


def _age_range(points: list[Point], age_now: float | None) -> tuple[float, float]:
    ages = [p.age_years for p in points] + ([age_now] if age_now is not None else [])
    low_limit, high_limit = MIN_MONTHS / 12, MAX_MONTHS / 12
    if not ages:
        return low_limit, high_limit
    low = max(low_limit, math.floor(min(ages)) - 1)
    high = min(high_limit, math.ceil(max(ages)) + 2)
    while high - low < 5 and (low > low_limit or high < high_limit):
        high = min(high_limit, high + 1)
        if high - low < 5:
            low = max(low_limit, low - 1)
    return low, high


def _nice_step(span: float) -> int:
    return 5 if span <= 60 else 10 if span <= 120 else 20


def growth_chart(sex: str | None, points: Iterable[Point], age_now: float | None = None,
                 limit: Limit | None = None) -> Markup | None:
    """The SVG chart, or None when the sex is not female/male (the reference is sex-specific). `limit`
    is the policy's height limit (`policy_limit`); None draws no limit line."""
    if sex not in ("male", "female"):
        return None
    kept = sorted((p for p in points if MIN_MONTHS <= p.age_years * 12 <= MAX_MONTHS), key=lambda p: p.age_years)
    low_age, high_age = _age_range(kept, age_now)
    steps = max(2, int(round((high_age - low_age) * 12)))
    ages = [low_age + (high_age - low_age) * i / steps for i in range(steps + 1)]
    curves = []
    limit_css = "threshold sd-" + sd_text(abs(limit.z)).replace(".", "-") if limit else ""   # sd-2-25, sd-3-0
    lines = CURVES + (((limit_css, limit.z, f"{sd_text(limit.z)} SD", LIMIT_STROKE, "6 4"),) if limit else ())
    for css, z, label, stroke, dash in lines:
        values = [(a, height_at(sex, a, z)) for a in ages]
        curves.append((css, z, label, stroke, dash, [(a, h) for a, h in values if h is not None]))
    all_heights = [h for *_, values in curves for _, h in values] + [p.height_cm for p in kept]
    step = _nice_step(max(all_heights) - min(all_heights))
    low_cm = math.floor((min(all_heights) - 2) / step) * step
    high_cm = math.ceil((max(all_heights) + 2) / step) * step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(age: float) -> float:
        return LEFT + (age - low_age) / (high_age - low_age) * plot_w

    def y(cm: float) -> float:
        return TOP + (high_cm - cm) / (high_cm - low_cm) * plot_h

    sex_word = "boys" if sex == "male" else "girls"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="growth-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="growth-title growth-desc" data-sex="{sex}">',
        f'<title id="growth-title">Height for age, {sex_word} (CDC 2000)</title>',
        f'<desc id="growth-desc">{_describe(kept)} {escape(limit_caption(limit))}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#8a9aa8"/>',
    ]
    out.append('<g class="grid" stroke="#e3e8ec" stroke-width="1">')
    for cm in range(int(low_cm), int(high_cm) + 1, step):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(cm):.1f}" y2="{y(cm):.1f}"/>')
    for age in range(math.ceil(low_age), math.floor(high_age) + 1):
        out.append(f'<line y1="{TOP}" y2="{TOP + plot_h}" x1="{x(age):.1f}" x2="{x(age):.1f}"/>')
    out.append("</g>")
    out.append('<g class="axis-labels" font-family="sans-serif" font-size="12" fill="#33414d">')
    for cm in range(int(low_cm), int(high_cm) + 1, step):
        out.append(f'<text x="{LEFT - 8}" y="{y(cm) + 4:.1f}" text-anchor="end">{cm}</text>')
    for age in range(math.ceil(low_age), math.floor(high_age) + 1):
        out.append(f'<text x="{x(age):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{age}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">Age (years)</text>')
    out.append(f'<text transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'Height (cm)</text>')
    out.append("</g>")
    for css, z, label, stroke, dash, values in curves:
        if len(values) < 2:
            continue
        d = "M" + " L".join(f"{x(a):.1f},{y(h):.1f}" for a, h in values)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width = "2" if z == 0.0 or css.startswith("threshold") else "1.5"
        out.append(f'<path class="{css}" data-z="{z:.3f}" d="{d}" fill="none" stroke="{stroke}" '
                   f'stroke-width="{width}"{dash_attr}/>')
        end_age, end_cm = values[-1]
        out.append(f'<text class="curve-label" x="{x(end_age) + 6:.1f}" y="{y(end_cm) + 4:.1f}" '
                   f'font-family="sans-serif" font-size="12" fill="{stroke}">{escape(label)}</text>')
    if len(kept) > 1:
        line = " ".join(f"{x(p.age_years):.1f},{y(p.height_cm):.1f}" for p in kept)
        out.append(f'<polyline class="measurement-line" points="{line}" fill="none" stroke="#0b57d0" '
                   f'stroke-width="1.5"/>')
    for p in kept:
        label = _point_label(p)
        out.append(f'<circle class="measurement" cx="{x(p.age_years):.1f}" cy="{y(p.height_cm):.1f}" r="4.5" '
                   f'fill="#0b57d0" stroke="#ffffff" stroke-width="1.5" data-age={quoteattr(f"{p.age_years:.2f}")} '
                   f'data-height-cm={quoteattr(f"{p.height_cm:.1f}")}><title>{escape(label)}</title></circle>')
    legend = (f'<line x1="{LEFT + 140}" x2="{LEFT + 168}" y1="{TOP - 16}" y2="{TOP - 16}" stroke="{LIMIT_STROKE}" '
              f'stroke-width="2" stroke-dasharray="6 4"/>'
              f'<text x="{LEFT + 174}" y="{TOP - 12}">{escape(limit.label)}</text>') if limit else ""
    out.append(f'<g class="legend" font-family="sans-serif" font-size="12" fill="#33414d">'
               f'<circle cx="{LEFT + 10}" cy="{TOP - 16}" r="4.5" fill="#0b57d0"/>'
               f'<text x="{LEFT + 20}" y="{TOP - 12}">measured height</text>{legend}</g>')
    out.append("</svg>")
    return Markup("\n".join(out))


def _point_label(p: Point) -> str:
    parts = [f"{p.height_cm:.1f} cm at {p.age_years:.2f} y"]
    if p.date:
        parts.append(f"on {p.date.isoformat()}")
    if p.sds is not None:
        parts.append(f"SDS {p.sds:+.2f}")
    if p.centile is not None:
        parts.append(f"centile {p.centile:g}")
    return ", ".join(parts)


def _describe(points: list[Point]) -> str:
    if not points:
        return "No measured height between 2 and 20 years is on file."
    last = points[-1]
    return f"{len(points)} measured height(s); latest {_point_label(last)}."
