"""Chinese and English for everything a person reads: the hub's pages, the service's pages
and messages, the CLI.

Rules:
- Strings are marked where they are written: `_("...")` translates now (in the language of
  the request or command being served), `N_("...")` only marks a module constant for
  extraction (translate it with `_(CONST)` where it is shown), `ngettext(one, many, n)` for
  counts. Placeholders are named, `%(name)s`, so a translation may reorder them.
- The catalogs are the `*.po` files under locale/<lang>/LC_MESSAGES/, one per area (hub,
  service, cli, ...), merged at load; English is the source language and needs none.
  Babel extracts (babel.cfg at the repo root); tests/test_i18n_catalog.py fails when a marked
  string has no translation.
- The language of a request: `?lang=` (then remembered in the COOKIE), else the cookie, else
  the browser's Accept-Language, else the platform default (settings `language:`).
- The current language lives in a context variable: the hub sets it per request
  (hub_ext.i18n.hub), the service in its handlers' prepare(), the CLI at start.
"""

from __future__ import annotations

import contextvars
import gettext as _gettext
import io
import re
from functools import lru_cache
from pathlib import Path

LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
SOURCE = "en"
COOKIE = "goldenhub_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
LOCALE_DIR = Path(__file__).with_name("locale")

_default = SOURCE
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("goldenhub_lang", default=None)


def set_default(lang: str | None) -> None:
    """The platform's default language (settings), used when a request names none."""
    global _default
    _default = normalize(lang) or SOURCE


def default() -> str:
    return _default


def current() -> str:
    return _current.get() or _default


def use(lang: str | None) -> contextvars.Token:
    """Serve the rest of this request/task in `lang` (a known language, else the default)."""
    return _current.set(normalize(lang) or _default)


def normalize(tag: str | None) -> str | None:
    """A language tag as browsers, cookies and settings write it ('zh-CN', 'zh_cn', 'zh',
    'zh-Hans', 'en-US') -> a supported language, or None. Bounded: a tag is at most 35 chars."""
    if not tag or len(tag) > 35:
        return None
    tag = tag.strip().replace("-", "_").lower()
    if tag in ("zh", "zh_cn", "zh_hans", "zh_hans_cn", "zh_sg"):
        return "zh_CN"
    if tag == "en" or tag.startswith("en_"):
        return "en"
    return None


_ACCEPT_ITEM = re.compile(r"\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*")


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an Accept-Language header (q-values honoured, at
    most 32 items read), or None."""
    best, best_q = None, 0.0
    for i, item in enumerate((header or "")[:1000].split(",")):
        if i >= 32:
            break
        m = _ACCEPT_ITEM.fullmatch(item)
        if not m:
            continue
        lang, q = normalize(m.group(1)), float(m.group(2) or 1)
        if lang and q > best_q:
            best, best_q = lang, q
    return best


def negotiate(query: str | None = None, cookie: str | None = None, accept_language: str | None = None) -> str:
    """The language to serve: ?lang=, then the remembered cookie, then Accept-Language, then
    the platform default."""
    return normalize(query) or normalize(cookie) or from_accept_language(accept_language) or _default


def html_lang(lang: str | None = None) -> str:
    """The language as an HTML lang / BCP 47 tag: 'zh-CN', 'en'."""
    return (lang or current()).replace("_", "-")


@lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    """All catalogs of `lang` merged (the *.po files of its LC_MESSAGES, compiled in memory:
    no build step, never a stale .mo). English: the source strings themselves."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    if lang == SOURCE or not folder.is_dir():
        return _gettext.NullTranslations()
    merged = Catalog(locale=lang)
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as f:
            for message in read_po(f, locale=lang):
                if message.id and message.string and not message.fuzzy:
                    merged[message.id] = message
    buf = io.BytesIO()
    write_mo(buf, merged)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def translate(message: str, lang: str | None = None) -> str:
    """`message` in the current (or given) language, unformatted."""
    return translations(lang or current()).gettext(message)


def ntranslate(singular: str, plural: str, n: int, lang: str | None = None) -> str:
    return translations(lang or current()).ngettext(singular, plural, n)


def _(message: str, **values) -> str:
    """Translate now and fill the named %(placeholders)s."""
    text = translate(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values) -> str:
    """The right plural for n, translated; `%(num)s` is n."""
    return ntranslate(singular, plural, n) % {"num": n, **values}


def N_(message: str) -> str:
    """Mark a module constant for extraction; translate it with _() where it is shown."""
    return message
