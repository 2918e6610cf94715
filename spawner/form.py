"""The options form: the environment templates this student may start, in the language of
the request that shows it."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from hub_ext.catalog.model import Template
from hub_ext.contract import OPTION_TEMPLATE
from hub_ext.i18n.format import size_text
from hub_ext.i18n.jinja import GoldenhubI18n

# The form is part of the hub's spawn page: rendered in the request's language (the hub sets
# it per request, hub_ext.i18n.hub), memory in the one size style ("4 GiB").
_env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True,
                   extensions=[GoldenhubI18n])

FORM = _env.get_template("options_form.html")


def make_options_form(templates: list[Template], selected: str | None = None,
                      gpus: dict[str, tuple[int, int]] | None = None, blocked: dict[str, str] | None = None,
                      notice: str = "", notes: dict[str, str] | None = None,
                      usage: dict[str, str] | None = None) -> str:
    """`gpus`: template id → (free, total); `blocked`: template id → why it cannot start now;
    `notice`: why the student's last server stopped, when they did not stop it; `notes`:
    template id → what its environment lacks (hub_ext.images.status), shown beside it; `usage`:
    template id → its quota's words ("12.5 of 20 GPU-hours used")."""
    blocked = {k: v for k, v in (blocked or {}).items() if v}
    startable = [t.id for t in templates if t.id not in blocked]
    if selected not in startable:
        selected = startable[0] if startable else None
    return FORM.render(templates=templates, selected=selected, mem=size_text, gpus=gpus or {}, blocked=blocked,
                       notice=notice, notes=notes or {}, field=OPTION_TEMPLATE, usage=usage or {})


def options_from_form(formdata: dict[str, list[str]]) -> dict:
    """Only the template id travels from the form; every other field is ignored here
    and refused by apply_user_options if posted through the API."""
    return {OPTION_TEMPLATE: (formdata.get(OPTION_TEMPLATE) or [""])[0]}
