"""The service's pages look like the hub's: one Jinja environment that finds the service's
templates, then the hub's overrides (branding/templates), then JupyterHub's own templates
under "templates/", and the values the hub's page.html needs.

Rules:
- Lookup order: hub_ext/service/templates, branding/templates (its page.html extends
  "templates/page.html"), JupyterHub's share/jupyterhub/templates as "templates/<name>".
- The stock page.html carries one inline <script> (require.config and window.jhdata). The
  service's CSP allows scripts from 'self' and from that script's per-response nonce only;
  StockPageLoader adds `nonce="{{ csp_nonce }}"` to exactly that tag and the served language
  to `<html lang>`, nothing else. A JupyterHub whose page.html no longer has them makes the
  service refuse to start (TemplateError), never serve a page that the CSP breaks.
- `prefix` is what the stock templates mean by it, the hub's root ("/"); the service's own
  templates see `prefix` as the service's prefix (gh_page.html rebinds it for its blocks).
  `service_prefix` is the service's prefix everywhere.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from types import SimpleNamespace

import jupyterhub
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, TemplateError
from jupyterhub.utils import url_path_join

from hub_ext import paths
from hub_ext.branding.handlers import template_versions
from hub_ext.branding.store import TEMPLATES_DIR as BRANDING_TEMPLATES
from hub_ext.i18n.format import install_filters

SERVICE_TEMPLATES = Path(__file__).with_name("templates")

_INLINE_SCRIPT = '<script type="text/javascript">\n      require.config('
_HTML_TAG = '<html lang="en">'


def stock_templates_dir() -> Path:
    """JupyterHub's templates, found as JupyterHub finds them (_template_paths_default):
    share/jupyterhub/templates under sys.prefix, else next to the installed package."""
    for base in (Path(sys.prefix), Path(jupyterhub.__file__).parents[1]):
        candidate = base / "share" / "jupyterhub" / "templates"
        if (candidate / "page.html").is_file():
            return candidate
    raise TemplateError(f"JupyterHub's templates (share/jupyterhub/templates/page.html) are not under {sys.prefix}; "
                        "reinstall jupyterhub in this environment")


class StockPageLoader(FileSystemLoader):
    """JupyterHub's templates, with page.html's one inline script given the response's nonce
    and its <html> tag the served language (see the module rules)."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if template == "page.html":
            nonced = _INLINE_SCRIPT.replace("<script ", '<script nonce="{{ csp_nonce }}" ', 1)
            source = _patch_once(source, _INLINE_SCRIPT, nonced, filename)
            source = _patch_once(source, _HTML_TAG, '<html lang="{{ html_lang() }}">', filename)
        return source, filename, uptodate


def _patch_once(source: str, old: str, new: str, filename: str | None) -> str:
    if source.count(old) != 1:
        raise TemplateError(f"{filename}: expected exactly one {old!r} to patch for the service's CSP and "
                            "language; this JupyterHub's page.html differs from the one goldenhub supports")
    return source.replace(old, new)


def make_environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([
            FileSystemLoader(SERVICE_TEMPLATES),
            FileSystemLoader(BRANDING_TEMPLATES),
            PrefixLoader({"templates": StockPageLoader(stock_templates_dir())}),
        ]),
        autoescape=True,
        extensions=["hub_ext.i18n.jinja.GoldenhubI18n"],
    )
    install_filters(env)
    env.get_template("gh_page.html")  # a page.html that cannot be patched stops the service here
    return env


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def hub_prefix() -> str:
    """The hub's root URL path ("/" unless the hub runs under a base_url)."""
    return os.environ.get("JUPYTERHUB_BASE_URL", "/") or "/"


def page_user(name: str) -> SimpleNamespace | None:
    """What page.html reads of `user`: the name, and the name escaped for a JS string."""
    if not name:
        return None
    return SimpleNamespace(name=name, json_escaped_name=json.dumps(name)[1:-1])


def own_service(service_prefix: str) -> list[SimpleNamespace]:
    """The nav bar's Services menu as the hub shows it to anyone who may open this service: the
    services with a URL the user may access, which in goldenhub's configuration
    (hubconfig.update_service) is this service alone."""
    return [SimpleNamespace(name=os.environ.get("JUPYTERHUB_SERVICE_NAME", "goldenhub"), href=service_prefix)]


def page_values(*, username: str, scopes, service_prefix: str, xsrf_token: str, nonce: str,
                services: list | None = None) -> dict:
    """The variables of the hub's page.html, as the hub gives them to its own pages."""
    root = hub_prefix()
    base_url = url_path_join(root, "hub/")
    version = jupyterhub.__version__

    def static_url(path: str, include_version: bool = True) -> str:
        url = url_path_join(base_url, "static", path)
        return f"{url}?v={version}" if include_version else url

    return {
        "prefix": root, "service_prefix": service_prefix, "base_url": base_url,
        "user": page_user(username), "parsed_scopes": set(scopes),
        "services": services if services is not None else own_service(service_prefix),
        "static_url": static_url, "version_hash": version, "no_spawner_check": True,
        "login_url": url_path_join(base_url, "login"), "logout_url": url_path_join(base_url, "logout"),
        "logo_url": "", "xsrf_token": xsrf_token, "csp_nonce": nonce, "admin_access": False,
        "goldenhub_branding": template_versions(paths.state_dir())(),
    }
