"""Rich styles taken from the current Textual theme, for text drawn outside CSS (tree labels, log lines)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from textual.color import Color

__all__ = ["Palette", "palette_from_variables"]


@dataclass(frozen=True)
class Palette:
    error: Style
    warning: Style
    success: Style
    primary: Style
    accent: Style
    muted: Style
    strong: Style
    match: Style


def _color(variables: dict[str, str], name: str, fallback: str) -> Color:
    background = Color.parse(variables.get("background", "#000000"))
    try:
        color = Color.parse(variables.get(name, fallback))
    except Exception:  # a theme variable that is not a plain colour ("auto 60%")
        color = Color.parse(fallback)
    return background + color


def palette_from_variables(variables: dict[str, str]) -> Palette:
    """Styles for the theme whose CSS variables these are (App.get_css_variables())."""

    def style(name: str, fallback: str, **extra) -> Style:
        return Style(color=_color(variables, name, fallback).rich_color, **extra)

    match_bg = _color(variables, "warning", "#ffaa00").rich_color
    return Palette(
        error=style("text-error", "#ff5f5f", bold=True),
        warning=style("text-warning", "#ffaf00", bold=True),
        success=style("text-success", "#5fd75f"),
        primary=style("text-primary", "#5fafff"),
        accent=style("text-accent", "#ffaf00"),
        muted=style("foreground-muted", "#888888"),
        strong=style("foreground", "#ffffff", bold=True),
        match=Style(color="black", bgcolor=match_bg, bold=True),
    )
