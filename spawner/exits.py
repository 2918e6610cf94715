"""Why a student's server or start ended when the student did not end it, in one sentence
for the student (shown on the next visit to the start page and in the next start's progress).

Rules: say what happened and that the files are kept; say what to do; nothing from a log.
A clean exit (code 0: the student shut Jupyter down) needs no explanation."""

from __future__ import annotations

from hub_ext.catalog.rules import format_bytes


def explain_exit(state: dict, course: str, memory: int = 0) -> str:
    """From Docker's container State (OOMKilled, ExitCode); '' when there is nothing to say."""
    code = state.get("ExitCode", 0)
    if state.get("OOMKilled"):
        limit = f" (its limit is {format_bytes(memory)})" if memory else ""
        return (f"Your {course} environment stopped because it ran out of memory{limit}. "
                "Your files are kept: start it again, and use less memory.")
    if code == 137:
        return (f"Your {course} environment was stopped from outside (killed). "
                "Your files are kept: start it again.")
    if code:
        return (f"Your {course} environment stopped unexpectedly (exit code {code}). "
                "Your files are kept: start it again.")
    return ""


def explain_reset(course: str, while_starting: bool) -> str:
    """A reset (or restore) by an administrator stopped the server or interrupted its start."""
    when = " while it was starting" if while_starting else ""
    return (f"An administrator reset your {course} environment{when}; your previous files are kept "
            "in a backup. Start it again.")
