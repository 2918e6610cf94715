"""Which notebooks a publish's smoke test runs (hub_ext.images.smoke), read from the
courseware on this host before any container exists, and SmokeFailed, the failure sentence.

Rules:
- Default: every regular *.ipynb file under the courseware, sorted by path;
  .ipynb_checkpoints and .git are skipped, symlinks are not followed.
- Notebook metadata {"goldenhub": {"smoke": false}} opts a notebook out (not when the
  publish lists it by name); {"goldenhub": {"smoke_timeout": S}} (whole seconds,
  MIN_BUDGET_S..MAX_BUDGET_S) is its budget, else the run's default.
- A listed name is the relative path of a notebook inside the courseware; anything else,
  and any metadata value outside the rules, is refused with a sentence naming the notebook,
  the value and what is allowed. More than MAX_NOTEBOOKS is refused, not run for hours.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hub_ext.i18n import _

MIN_BUDGET_S, MAX_BUDGET_S = 1, 3600  # a notebook's smoke_timeout
MAX_NOTEBOOKS = 500
SKIPPED_DIRS = {".ipynb_checkpoints", ".git"}


class SmokeFailed(Exception):
    """str(): the sentence for the publish log and page; `detail`: what the runner printed and
    the container's log tail, for the publish log only."""

    def __init__(self, sentence: str, detail: str = ""):
        super().__init__(sentence)
        self.detail = detail


@dataclass(frozen=True)
class Notebook:
    path: str  # relative to the courseware, with '/'
    budget_s: int


def _smoke_settings(path: str, data: object, default_budget: int) -> tuple[bool, int]:
    """(run it, budget) from a notebook's metadata; a bad value is a SmokeFailed sentence."""
    meta = data.get("metadata") if isinstance(data, dict) else None
    ours = meta.get("goldenhub", {}) if isinstance(meta, dict) else {}
    if not isinstance(ours, dict):
        raise SmokeFailed(_("%(notebook)s: the metadata goldenhub must be a mapping such as "
                            "{\"smoke\": false} or {\"smoke_timeout\": 120}", notebook=path))
    run = ours.get("smoke", True)
    if not isinstance(run, bool):
        raise SmokeFailed(_("%(notebook)s: the metadata goldenhub.smoke is %(value)s; allowed: true or false",
                            notebook=path, value=json.dumps(run)[:40]))
    budget = ours.get("smoke_timeout", default_budget)
    if isinstance(budget, bool) or not isinstance(budget, int) or not MIN_BUDGET_S <= budget <= MAX_BUDGET_S:
        raise SmokeFailed(_("%(notebook)s: the metadata goldenhub.smoke_timeout is %(value)s; allowed: whole "
                            "seconds from %(low)d to %(high)d", notebook=path, value=json.dumps(budget)[:40],
                            low=MIN_BUDGET_S, high=MAX_BUDGET_S))
    return run, budget


def _read_notebook(root: Path, rel: str) -> object:
    try:
        return json.loads((root / rel).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SmokeFailed(_("%(notebook)s could not be read as a notebook: %(error)s", notebook=rel,
                            error=str(e)[:200])) from None


def find_notebooks(courseware: Path) -> list[str]:
    """Every regular *.ipynb file under the courseware, relative, sorted; no symlink followed."""
    found = []
    for directory, dirs, files in os.walk(courseware, followlinks=False):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        for name in files:
            path = Path(directory, name)
            if name.endswith(".ipynb") and path.is_file() and not path.is_symlink():
                found.append(path.relative_to(courseware).as_posix())
    return sorted(found)


def plan_notebooks(courseware: Path, listed: list[str] | None, budget_s: int) -> tuple[list[Notebook], list[str]]:
    """(notebooks to run, notebooks opted out). Listed names must be relative paths of
    notebooks inside the courseware; they run whatever their metadata's smoke says."""
    if listed is None:
        names, forced = find_notebooks(courseware), False
    else:
        names, forced = list(listed), True
        for rel in names:
            parts = PurePosixPath(rel).parts if isinstance(rel, str) else ()
            path = courseware / rel if parts else courseware
            if (not parts or not rel.endswith(".ipynb") or rel.startswith("/") or ".." in parts
                    or not path.is_file() or path.is_symlink()
                    or not path.resolve().is_relative_to(courseware.resolve())):
                raise SmokeFailed(_("No notebook %(notebook)s in the courseware; allowed: the path of a .ipynb file "
                                    "inside it, such as lessons/intro.ipynb", notebook=repr(rel)[:120]))
    if len(names) > MAX_NOTEBOOKS:
        raise SmokeFailed(_("The courseware has %(count)d notebooks; a smoke test runs at most %(most)d. Mark "
                            "the ones to skip with the metadata {\"goldenhub\": {\"smoke\": false}}.",
                            count=len(names), most=MAX_NOTEBOOKS))
    run, skipped = [], []
    for rel in names:
        wanted, budget = _smoke_settings(rel, _read_notebook(courseware, rel), budget_s)
        if wanted or forced:
            run.append(Notebook(rel, budget))
        else:
            skipped.append(rel)
    return run, skipped
