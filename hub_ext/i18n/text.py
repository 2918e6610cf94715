"""Text a course file writes in several languages: `title: {en: Intro to Python, zh_CN: Python 入门}`.

A LocalText is the English (source) text as a plain str — what the API, logs and Python
code see — that also carries its other languages. Pages show it in the viewer's language:
Jinja's autoescape asks for __html__, which picks the current language (hub_ext.i18n), so
`{{ course.title }}` needs nothing special. `.text(lang)` for Python code that wants one
language explicitly. A plain str title stays a plain str: one text for every language.
"""

from __future__ import annotations

from markupsafe import escape

from hub_ext import i18n


class LocalText(str):
    translations: dict[str, str]

    def __new__(cls, source: str, translations: dict[str, str] | None = None):
        obj = super().__new__(cls, source)
        obj.translations = dict(translations or {})
        return obj

    def text(self, lang: str | None = None) -> str:
        """The text in `lang` (default: the current language), else the source text."""
        return self.translations.get(lang or i18n.current()) or str.__str__(self)

    def __html__(self) -> str:
        return str(escape(self.text()))

    def __reduce__(self):
        return (LocalText, (str.__str__(self), self.translations))
