"""Why a student's server or start ended when the student did not end it, in one sentence
for the student (shown on the next visit to the start page and in the next start's progress),
and the one way the spawner refuses a start (`start_refusal`).

Rules: say what happened and that the files are kept; say what to do; nothing from a log
(no HTTP code, image, volume or container name, no server path: those go to the hub log).
A clean exit (code 0: the student shut Jupyter down) needs no explanation. Sentences are
translated when made: a start runs in the student's request language (the hub sets it per
request, hub_ext.i18n.hub), an exit found by a poll in the platform's default language.
"""

from __future__ import annotations

from tornado import web

from hub_ext.i18n.deferred import deferred, told
from hub_ext.i18n import N_, _, current, ngettext
from hub_ext.i18n.format import size_text


def start_refusal(status: int, sentence: str, reason: str = "") -> web.HTTPError:
    """An HTTPError whose sentence the hub shows as it is, on the start page, in the start's
    progress and in API answers (JupyterHub reads `jupyterhub_message`), instead of
    "HTTP 503: Service Unavailable (…)". `reason`: a short code for the start events
    (e.g. "quota"), read as `goldenhub_reason` (tornado's `.reason` is the HTTP phrase)."""
    error = web.HTTPError(status, "%s", sentence)
    error.jupyterhub_message = sentence
    error.goldenhub_reason = reason
    return error


def local(text) -> str:
    """A course or template title (hub_ext.i18n.text.LocalText) in the current language."""
    return text.text() if hasattr(text, "text") else str(text)


def explain_exit(state: dict, course, memory: int = 0) -> str:
    """From Docker's container State (OOMKilled, ExitCode); '' when there is nothing to say."""
    code = state.get("ExitCode", 0)
    course = local(course)
    if state.get("OOMKilled"):
        if memory:
            return _("Your %(course)s environment stopped because it ran out of memory (its limit is %(limit)s). "
                     "Your files are kept: start it again, and use less memory.", course=course,
                     limit=size_text(memory))
        return _("Your %(course)s environment stopped because it ran out of memory. "
                 "Your files are kept: start it again, and use less memory.", course=course)
    if code == 137:
        return _("Your %(course)s environment was stopped from outside (killed). "
                 "Your files are kept: start it again.", course=course)
    if code:
        return _("Your %(course)s environment stopped unexpectedly (exit code %(code)s). "
                 "Your files are kept: start it again.", course=course, code=code)
    return ""


RESET_SENTENCES = {  # (while starting, asked by the student themselves) -> the sentence
    (True, False): N_("An administrator reset your %(course)s environment while it was starting; your previous "
                      "files are kept in a backup. Start it again."),
    (False, False): N_("An administrator reset your %(course)s environment; your previous files are kept in a "
                       "backup. Start it again."),
    (True, True): N_("You reset your %(course)s environment while it was starting; your previous files are kept "
                     "in a backup. Start it again."),
    (False, True): N_("You reset your %(course)s environment; your previous files are kept in a backup. Start it "
                      "again."),
}


def reset_reason(course, while_starting: bool, by_owner: bool = False) -> str:
    """A reset (or restore) stopped the server or interrupted its start: the stop reason kept in
    the server's state, deferred (hub_ext.i18n.deferred.told() says it in the reader's language)."""
    return deferred(RESET_SENTENCES[while_starting, by_owner], course=course)


def explain_reset(course, while_starting: bool, by_owner: bool = False) -> str:
    """reset_reason() in the current language."""
    return told(reset_reason(course, while_starting, by_owner))


def sentences(*parts: str) -> str:
    """Sentences one after the other, as the current language writes them (Chinese: no space)."""
    return ("" if current() == "zh_CN" else " ").join(p for p in parts if p)


def listing(items: list[str]) -> str:
    """'a, b' in English, 'a、b' in Chinese."""
    return ("、" if current() == "zh_CN" else ", ").join(items)


def explain_no_gpu(template, course, needed: int, total: int, free: int, waiting: int,
                   instead: list) -> str:
    """Why a GPU template cannot start now, and what the student can do. Rules: a server
    with no GPU at all (or too few for this template) never says "try again later": nothing
    will change by waiting; `instead` are the CPU templates of the same course that this
    student may start (never another course's); without one, ask the instructor."""
    template, course = local(template), local(course)
    others = listing([local(t) for t in instead])
    if total == 0 or needed > total:
        if total == 0:
            reason = _("This server has no GPU, so %(template)s of %(course)s cannot start here.",
                       template=template, course=course)
        else:
            reason = _("%(template)s of %(course)s needs %(needed)d GPUs and this server has only %(total)d, "
                       "so it cannot start here.", template=template, course=course, needed=needed, total=total)
        what_to_do = (_("You can start %(templates)s instead.", templates=others) if others
                      else _("Ask your instructor which environment to use instead."))
        return sentences(reason, what_to_do)
    busy = ngettext("The only GPU for %(course)s is in use (%(free)d free, %(needed)d needed).",
                    "All %(num)d GPUs for %(course)s are in use (%(free)d free, %(needed)d needed).", total,
                    course=course, free=free, needed=needed)
    queue = ngettext("%(num)d other student is waiting too.", "%(num)d other students are waiting too.",
                     waiting) if waiting else ""
    what_to_do = (_("Try again in a few minutes, or start %(templates)s instead.", templates=others) if others
                  else _("Try again in a few minutes."))
    return sentences(busy, queue, what_to_do)
