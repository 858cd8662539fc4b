"""The login form of a single sign-on page, read as a browser sees it: where it posts, the hidden fields it
carries back (the one-time `execution` or `token`, `_eventId`, `lt`...), and which inputs take the username and
the password. CasClient and OidcClient read their forms with it.

The credential fields are named by the form itself: the password input names the password field, the text (or
email) input before it the username (else the first one after it), as a person filling the form sees them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

__all__ = ["LOGIN_PAGE_MAX_CHARS", "LoginForm", "parse_login_form"]

# The page is read in one pass of one pattern whose every alternative, once begun at a "<", runs to its end or
# to the page's and never fails: a comment, a script or a style (left out), a form or input tag to its ">" (a
# tag or a quote left open takes the rest of the page, as in a browser). No position is ever scanned twice, so
# the reader is linear in the page, whatever the page (no ReDoS), and it reads at most LOGIN_PAGE_MAX_CHARS.
# Regular expressions rather than html.parser: the form is read at every login, on the generator's hot path.
LOGIN_PAGE_MAX_CHARS = 1 << 20
_TOKENS = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style)\b.*?(?:</\1\s*>|\Z)"
    r"""|<(form|input)\b((?:[^>"']+|"[^"]*(?:"|\Z)|'[^']*(?:'|\Z))*)""",
    re.DOTALL | re.IGNORECASE,
)
# A tag's attributes: HTML's three ways of quoting a value (an open quote runs to the end), or none.
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>"']+)))?""")
# Inputs a person types an identifier into.
_TEXT_KINDS = frozenset({"text", "email"})


@dataclass
class LoginForm:
    """A login form: its action (absolute), its hidden fields, the names of its credential inputs as the form
    shows them (username_field "" when it has no text input), and the names of all its inputs."""

    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    username_field: str = ""
    password_field: str = ""
    inputs: frozenset[str] = frozenset()


@dataclass
class _Form:
    action: str | None
    hidden: dict[str, str] = field(default_factory=dict)
    typed: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) of text, email, password inputs
    inputs: set[str] = field(default_factory=set)


def parse_login_form(page: str, page_url: str) -> LoginForm | None:
    """The first form of a page that has a password input, or None when the page has none in its first
    LOGIN_PAGE_MAX_CHARS. Comments, scripts and styles are left out; the first of a repeated hidden field wins."""
    forms: list[_Form] = []
    for token in _TOKENS.finditer(page, 0, LOGIN_PAGE_MAX_CHARS):
        tag = token[2]
        if tag is None:  # a comment, a script or a style
            continue
        attributes = _attributes(token[3])
        if tag.lower() == "form":
            forms.append(_Form(attributes.get("action")))
            continue
        name = attributes.get("name")
        if not forms or not name:
            continue
        form, kind = forms[-1], attributes.get("type", "text").lower()
        form.inputs.add(name)
        if kind == "hidden":
            form.hidden.setdefault(name, attributes.get("value", ""))
        elif kind in _TEXT_KINDS or kind == "password":
            form.typed.append((kind, name))
    for form in forms:
        kinds = [kind for kind, _ in form.typed]
        if "password" not in kinds:
            continue
        at = kinds.index("password")
        before = [name for kind, name in form.typed[:at] if kind in _TEXT_KINDS]
        after = [name for kind, name in form.typed[at + 1 :] if kind in _TEXT_KINDS]
        username = (before[-1:] or after[:1] or [""])[0]
        action = urljoin(page_url, form.action or page_url)
        return LoginForm(action, form.hidden, username, form.typed[at][1], frozenset(form.inputs))
    return None


def _attributes(text: str) -> dict[str, str]:
    """A tag's attributes, names lower-cased, values unescaped; the first of a repeated name wins, as in HTML."""
    attributes: dict[str, str] = {}
    for name, double, single, bare in _ATTRIBUTE.findall(text):
        attributes.setdefault(name.lower(), html.unescape(double or single or bare))
    return attributes
