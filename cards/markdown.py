"""Text into card markdown: whatever is not the card's own markup is shown as text, never as markup.

Card details are GitHub Flavored Markdown (CDS Hooks 2.0), rendered by the EHR inside the
clinician's session. Chart text (a Condition's words, a valueString, a payer's name, the order's
reason) must not become HTML, a link, an image or a table cell there. `escape_markdown` is applied
to every value a card's wording interpolates (cards/text.py); the only links a card holds are the
service's own, written by cards/text.py and cards/build.py.

- Control characters, bidirectional overrides and lone surrogates are removed (`plain_text`), and
  line breaks become spaces: a value can never start a block (heading, list, quote, code, table).
- Every character that can open inline markup is backslash-escaped (CommonMark §2.4), and a
  value that would start a block if it began a line has its first character escaped too.
- GFM autolinks ("https://…", "www.…", "name@host") do not honour backslashes, so a WORD JOINER
  (U+2060, invisible) breaks them.
"""
from __future__ import annotations

import re

# Characters that start or end inline markup: emphasis, code, links and images, raw HTML, entities,
# tables, strikethrough; the backslash itself ("!" needs no escape: "[" is escaped).
_INLINE = re.compile(r"([\\`*_\[\]<>&|~])")
# A value that would begin a block if it started a line: a quote, a list item ("-", "+", "1.", "1)"
# then a space), an ATX heading ("#" … "######" then a space), a setext underline or thematic break
# (a value of only "=" or "-"). A list number is escaped at its full stop or parenthesis.
_BLOCK_START = re.compile(r"^(?:(?P<mark>>|[+\-](?=\s|$)|#(?=#{0,5}(?:\s|$))|[=\-](?=[=\-\s]*$))"
                          r"|(?P<number>\d{1,9})(?P<end>[.)])(?=\s|$))")
# Where a GFM autolink is recognised: the scheme's "://", a "www." host, the "@" of an address.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"
# Removed: control characters other than white space (C0, DEL, C1), lone surrogates, and the
# bidirectional marks, embeddings, overrides and isolates that reorder what the clinician sees.
_UNSHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
                      "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_text(value: object) -> str:
    """`value` as one line of text: no control characters, bidi controls or lone surrogates; any run of
    white space (line breaks included) one space. For plain-text fields (a card's summary, labels)."""
    text = str(value) if value is not None else ""
    return " ".join(_UNSHOWN.sub("", text).split())      # split() cuts at what `\s` matches (str.isspace)


def escape_markdown(value: object) -> str:
    """`value` as literal text inside markdown: what it says is shown, none of it is markup."""
    text = _INLINE.sub(r"\\\1", plain_text(value))
    text = _BLOCK_START.sub(_escape_block_start, text, count=1)
    if "@" in text or "://" in text or "www." in text.lower():     # else no autolink can start (cheaper than its scan)
        text = _AUTOLINK.sub(WORD_JOINER, text)
    return text


def _escape_block_start(found: re.Match[str]) -> str:
    if found.group("mark"):
        return "\\" + found.group("mark")
    return found.group("number") + "\\" + found.group("end")
