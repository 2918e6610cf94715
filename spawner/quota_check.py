"""Quotas as the spawner sees them: where the student stands against each quota'd template
(for the picker's "12.5 of 20 GPU-hours used") and the refusal of a start over quota.

Rules: the service's database (GoldenSpawner.catalog_db_url) is read in one blocking call per
form render or start, which the spawner runs in a thread; without a database nothing is
metered here (the service still records and stops). The refusal comes before any GPU is
taken, with reason code "quota" (spawner.exits.start_refusal) for the start events.
"""

from __future__ import annotations

from datetime import datetime

from hub_ext.catalog.model import Template
from hub_ext.service.db import shared_database, utcnow
from hub_ext.usage import quotas, records
from hub_ext.usage.records import Standing
from spawner.exits import local, start_refusal

def standings(db_url: str, user: str, templates: list[Template], now: datetime | None = None) -> dict[str, Standing]:
    """Template id → the student's standing, for each template with a quota (blocking)."""
    metered = [t for t in templates if t.quota is not None]
    if not db_url or not metered:
        return {}
    db, now = shared_database(db_url), now or utcnow()
    return {t.id: records.standing(db, user, t.course, t.quota, now) for t in metered}


def picker_words(templates: list[Template], found: dict[str, Standing],
                 course_titles: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(template id → "12.5 of 20 GPU-hours used", template id → why it cannot start: over quota)."""
    by_id = {t.id: t for t in templates}
    words = {tid: quotas.picker_words(st, by_id[tid].gpus) for tid, st in found.items()}
    over = {tid: quotas.refusal(st, by_id[tid].gpus, local(by_id[tid].title),
                                local(course_titles.get(by_id[tid].course, by_id[tid].course)))
            for tid, st in found.items() if st.over}
    return words, over


def refuse_over_quota(template: Template, course_title, st: Standing | None) -> None:
    """Raise the start's refusal when the student has no hours left in this template's quota."""
    if st is not None and st.over:
        sentence = quotas.refusal(st, template.gpus, local(template.title), local(course_title))
        raise start_refusal(403, sentence, reason="quota")
