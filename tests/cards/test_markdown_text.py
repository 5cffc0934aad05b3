"""cards/markdown.py writes each text as the regex substitutions it was first written with: `split` for the
white space, the autolink scan only where an autolink can start. The reference below is those
substitutions, compared over hostile and random text."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from cards.markdown import WORD_JOINER, escape_markdown, plain_text
from tests.security.test_card_markdown import HOSTILE

_INLINE = re.compile(r"([\\`*_\[\]<>&|~])")
_BLOCK_START = re.compile(r"^(?:(?P<mark>>|[+\-](?=\s|$)|#(?=#{0,5}(?:\s|$))|[=\-](?=[=\-\s]*$))"
                          r"|(?P<number>\d{1,9})(?P<end>[.)])(?=\s|$))")
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_UNSHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _plain_text_by_regex(value):
    text = str(value) if value is not None else ""
    return _SPACES.sub(" ", _UNSHOWN.sub("", text)).strip()


def _escape_by_regex(value):
    def block(found):
        return "\\" + found.group("mark") if found.group("mark") else found.group("number") + "\\" + found.group("end")
    text = _INLINE.sub(r"\\\1", _plain_text_by_regex(value))
    text = _BLOCK_START.sub(block, text, count=1)
    return _AUTOLINK.sub(WORD_JOINER, text)


# Markup, links, addresses, every kind of white space and the characters the escapes care about,
# mixed with any character at all.
_PIECES = st.sampled_from(list("\\`*_[]<>&|~!#=-+.)@:/ \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\u202e\ud800Ww0179é—µ")
                          + ["://", "www.", "WWW.", "wWw.", "http://x", "a@b", "1.", "12)", "# ", "> ", "---", "İ"])
_TEXTS = st.lists(_PIECES | st.characters(), max_size=40).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_TEXTS)
def test_the_same_text_as_the_regex_substitutions(text):
    assert plain_text(text) == _plain_text_by_regex(text)
    assert escape_markdown(text) == _escape_by_regex(text)


@pytest.mark.parametrize("value", HOSTILE + [None, 42, 2.5, "", "   ", "x@y", "see WWW.example.org", "a:/ /b"])
def test_hostile_and_odd_values(value):
    assert plain_text(value) == _plain_text_by_regex(value)
    assert escape_markdown(value) == _escape_by_regex(value)
