"""The options form: the environment templates this student may start."""

from __future__ import annotations

from jinja2 import Environment

from hub_ext.catalog.model import Template
from hub_ext.catalog.rules import format_bytes
from hub_ext.contract import OPTION_TEMPLATE

_env = Environment(autoescape=True)

FORM = _env.from_string("""
{%- if notice %}
<p class="alert alert-warning goldenhub-notice">{{ notice }}</p>
{%- endif %}
{%- if not templates %}
<p class="alert alert-warning">No environment is available to you yet. Ask your instructor to add you to a course.</p>
{%- else %}
<div class="goldenhub-templates">
  <p>Pick the course environment to start:</p>
  {%- for t in templates %}
  <div class="form-check mb-2">
    <input class="form-check-input" type="radio" name="{{ field }}" id="template-{{ t.id }}"
           value="{{ t.id }}"{% if t.id == selected %} checked{% endif %}{% if blocked.get(t.id) %} disabled{% endif %}>
    <label class="form-check-label" for="template-{{ t.id }}">
      <strong>{{ t.title }}</strong> <span class="text-muted">({{ t.course }})</span><br>
      <small>{{ t.description }}</small><br>
      <small class="text-muted">{{ t.gpus }} GPU{{ '' if t.gpus == 1 else 's' }} ·
        {{ t.cpu | round(1) }} CPU · {{ mem(t.memory) }} memory
        {%- if t.id in gpus %} · <span class="goldenhub-gpus-free">{{ gpus[t.id][0] }} of {{ gpus[t.id][1] }} GPUs free</span>{% endif %}</small>
      {%- if blocked.get(t.id) %}<br><small class="text-danger goldenhub-unavailable">{{ blocked[t.id] }}</small>{% endif %}
      {%- if notes.get(t.id) %}<br><small class="text-warning-emphasis goldenhub-framework-note">{{ notes[t.id] }}</small>{% endif %}
    </label>
  </div>
  {%- endfor %}
</div>
{%- endif %}
""")


def make_options_form(templates: list[Template], selected: str | None = None,
                      gpus: dict[str, tuple[int, int]] | None = None, blocked: dict[str, str] | None = None,
                      notice: str = "", notes: dict[str, str] | None = None) -> str:
    """`gpus`: template id → (free, total); `blocked`: template id → why it cannot start now;
    `notice`: why the student's last server stopped, when they did not stop it; `notes`:
    template id → what its environment lacks (hub_ext.images.status), shown beside it."""
    blocked = {k: v for k, v in (blocked or {}).items() if v}
    startable = [t.id for t in templates if t.id not in blocked]
    if selected not in startable:
        selected = startable[0] if startable else None
    return FORM.render(templates=templates, selected=selected, mem=format_bytes, gpus=gpus or {}, blocked=blocked,
                       notice=notice, notes=notes or {}, field=OPTION_TEMPLATE)


def options_from_form(formdata: dict[str, list[str]]) -> dict:
    """Only the template id travels from the form; every other field is ignored here
    and refused by apply_user_options if posted through the API."""
    return {OPTION_TEMPLATE: (formdata.get(OPTION_TEMPLATE) or [""])[0]}
