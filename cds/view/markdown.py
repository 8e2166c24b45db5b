"""Card detail Markdown to HTML on the server (markdown-it-py, CommonMark): raw HTML in a
card is escaped, never passed through, and only safe link schemes survive."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(text: str | None) -> Markup:
    return Markup(_md.render(text or ""))  # html is off: markdown-it escapes
