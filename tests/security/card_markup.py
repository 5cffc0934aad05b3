"""What an EHR shows for a card: its detail rendered as GitHub Flavored Markdown (cmark-gfm, the
renderer GitHub uses, with raw HTML let through so that any that survives is seen), and checks
that none of the markup came from the chart."""
from __future__ import annotations

import html
import re

import cmarkgfm
from cmarkgfm.cmark import Options

from cards.markdown import WORD_JOINER
from service.policy.loader import load_policies

# The tags the cards' own markup renders to; anything else is HTML from somewhere else.
OWN_TAGS = frozenset({"p", "ul", "ol", "li", "strong", "em", "table", "thead", "tbody", "tr", "th", "td",
                      "blockquote", "a", "br"})
_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
_HREF = re.compile(r"""<a\s[^>]*href="([^"]*)\"""")
_IMG = re.compile(r"<img\b", re.I)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def render(markdown: str) -> str:
    extensions = ["table", "autolink", "strikethrough", "tagfilter"]
    return cmarkgfm.markdown_to_html_with_extensions(markdown, options=Options.CMARK_OPT_UNSAFE,
                                                     extensions=extensions)


def own_links() -> frozenset[str]:
    policies = load_policies()
    urls = {policies.label.source_url, (policies.label.support or {}).get("programme_url")} - {None}
    urls.update(url for policy in policies.policies for url in policy.source_urls)
    return frozenset(html.escape(url) for url in urls)


def visible_text(markdown: str) -> str:
    """The words a reader sees, without tags or the invisible joiners that break autolinks."""
    text = re.sub(r"<[^>]+>", " ", render(markdown))
    return re.sub(r"\s+", " ", html.unescape(text).replace(WORD_JOINER, "")).strip()


def markup_problems(card: dict, allowed_links: frozenset[str]) -> list[str]:
    """Raw HTML, images, links not the service's own, control characters: none may be in a card."""
    problems = []
    for field in ("summary", "detail"):
        if _CONTROL.search(card.get(field, "")):
            problems.append(f"{field}: control character")
    rendered = render(card.get("detail", ""))
    problems += [f"detail: <{tag}>" for tag in _TAG.findall(rendered) if tag.lower() not in OWN_TAGS]
    if _IMG.search(rendered):
        problems.append("detail: image")
    problems += [f"detail: link to {href}" for href in _HREF.findall(rendered) if href not in allowed_links]
    return problems
