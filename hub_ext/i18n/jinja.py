"""Jinja's i18n extension wired to goldenhub's catalogs, for the hub's template environment
(c.JupyterHub.jinja_environment_options, by dotted name) and the service's.

Templates write `{{ _("Reset %(name)s's home", name=user) }}`, `{% trans %}` blocks, or
`{{ ngettext("%(num)d student", "%(num)d students", n) }}`: newstyle gettext, so
placeholders are filled after translation and the values are autoescaped."""

from __future__ import annotations

from jinja2.ext import InternationalizationExtension

from hub_ext import i18n


class GoldenhubI18n(InternationalizationExtension):
    """InternationalizationExtension with goldenhub's translations installed at creation
    (the language is the current request's: hub_ext.i18n.current())."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.install_gettext_callables(
            lambda message: i18n.translate(message),
            lambda singular, plural, n: i18n.ntranslate(singular, plural, n),
            newstyle=True,
        )
        environment.globals.update(current_language=i18n.current, html_lang=i18n.html_lang,
                                   languages=i18n.LANGUAGES)
