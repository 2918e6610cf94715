"""The hub's pages in the visitor's language: a tornado output transform that chooses the
language of each request, and what the hub's templates need to show the nav bar.

Rules:
- Every request the hub serves is given a language before its handler runs: tornado builds
  the application's transforms (`Transform(request)`) in the connection's task right before
  it creates the handler's task, and a new task copies the context it was created in. So
  LanguageTransform.__init__ sets hub_ext.i18n's context variable and the handler, its
  templates, its write_error and anything it starts (a spawn) see that language; concurrent
  requests run in different tasks and never see each other's.
- The language: `?lang=` (a supported one), else the cookie goldenhub_lang, else
  Accept-Language, else the platform default (hub_ext.i18n.negotiate).
- `?lang=` that names a supported language is remembered: the response sets the cookie
  (Path=/ so the service's pages follow it, SameSite=Lax, one year, Secure over https).
  Anything else in `?lang=` is ignored and sets nothing.
- The stock page.html writes `<html lang="en">` outside any block; the transform writes the
  served language there (only in a whole HTML response that starts with it).
- tornado adds its gzip transform only when an application is given no transforms, so
  make_transforms appends it when the settings ask for compression.
"""

from __future__ import annotations

import re

from jinja2.ext import Extension
from tornado.web import GZipContentEncoding, OutputTransform

from hub_ext import contract, i18n
from hub_ext.i18n import N_

_STOCK_HTML_TAG = re.compile(rb'\A(\s*<!DOCTYPE html>\s*)<html lang="en">', re.IGNORECASE)


def cookie_header(lang: str, secure: bool) -> str:
    """The Set-Cookie value that remembers a chosen language."""
    return (f"{i18n.COOKIE}={lang}; Path=/; Max-Age={i18n.COOKIE_MAX_AGE}; SameSite=Lax"
            + ("; Secure" if secure else ""))


def request_language(request) -> tuple[str, str | None]:
    """(language to serve, language to remember or None) for a tornado HTTPServerRequest."""
    query = request.query_arguments.get("lang", [b""])[-1].decode("utf-8", "replace")
    chosen = i18n.normalize(query)
    cookie = request.cookies.get(i18n.COOKIE)
    lang = i18n.negotiate(chosen, cookie.value if cookie else None, request.headers.get("Accept-Language"))
    return lang, chosen


class LanguageTransform(OutputTransform):
    """Sets the request's language (see the module rules) and tells the response."""

    def __init__(self, request):
        self.lang, self.remember = request_language(request)
        self.secure = request.protocol == "https"
        i18n.use(self.lang)

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if self.remember:
            headers.add("Set-Cookie", cookie_header(self.remember, self.secure))
        if not headers.get("Content-Type", "").startswith("text/html"):
            return status_code, headers, chunk  # API answers and static files: the cookie only
        # A page depends on the language the request chose.
        headers.add("Vary", "Accept-Language")
        headers.add("Vary", "Cookie")
        if finishing and self.lang != "en" and "Content-Encoding" not in headers:
            patched = _STOCK_HTML_TAG.sub(
                lambda m: m.group(1) + b'<html lang="%s">' % i18n.html_lang(self.lang).encode(), chunk, count=1)
            if patched != chunk:
                chunk = patched
                if "Content-Length" in headers:
                    headers["Content-Length"] = str(len(chunk))
        return status_code, headers, chunk


class HubFilters(Extension):
    """The one time and size style in the hub's templates ({{ t|when }}, {{ n|size }}):
    hub_ext.i18n.format's filters, installed through c.JupyterHub.jinja_environment_options."""

    def __init__(self, environment):
        from hub_ext.i18n.format import install_filters

        super().__init__(environment)
        install_filters(environment)


def make_transforms(tornado_settings: dict) -> list[type[OutputTransform]]:
    """The hub application's transforms: the language, then gzip if the settings ask for it
    (tornado would add gzip itself only when no transforms are given)."""
    transforms: list[type[OutputTransform]] = [LanguageTransform]
    if tornado_settings.get("compress_response") or tornado_settings.get("gzip"):
        transforms.append(GZipContentEncoding)
    return transforms


def is_course_admin(admin: bool, group_names) -> bool:
    """Who sees "Course admin" in the nav bar: admins and the staff of any course (the same
    rule as the service's admin pages: a staff group of hub_ext.contract)."""
    if admin:
        return True
    for name in group_names:
        found = contract.course_of_group(name)
        if found and found[1]:
            return True
    return False


def course_admin_var(user) -> bool:
    """template_vars callable (JupyterHub calls it with the page's user, or None)."""
    if user is None:
        return False
    return is_course_admin(bool(getattr(user, "admin", False)), (g.name for g in getattr(user, "groups", [])))


# JupyterHub's own sentences that reach the hub's templates as values (login_error,
# error messages); the templates translate them with _(value).
STOCK_MESSAGES = (N_("Invalid username or password"),)
