"""What each template field means, in one place: the template editor's field help and its
commented example are both made from FIELDS.

Rules: every field the checker accepts (model.TEMPLATE_FIELDS, DATASET_FIELDS,
COURSEWARE_FIELDS) has one FieldHelp here, and each example value passes the field's rule
(tests/test_template_editor.py checks both, and that each stated default is the value the
checker fills in). The words are marked with N_ and translated where they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from hub_ext.i18n import N_, _


@dataclass(frozen=True)
class FieldHelp:
    name: str  # as written in YAML: "memory", "datasets[].source", "courseware.repo"
    required: bool
    meaning: str  # N_ text
    allowed: str  # N_ text
    example: Any  # a value that passes the field's rule
    default: Any = None  # the value the checker fills in when the field is left out (optional fields)
    default_note: str = ""  # N_ text shown instead of the default where it depends on other fields

    @property
    def key(self) -> str:
        return self.name.rpartition(".")[2]


TEMPLATE_HELP = (
    FieldHelp("id", True, N_("The template's name in URLs, the API and the admin page; it cannot change later."),
              N_("1-40 lowercase letters, digits and '-', starting and ending with a letter or digit."),
              "data-lab-cpu"),
    FieldHelp("title", True, N_("What students see on the picker."),
              N_("Text of at most 100 characters, or one text per language: {en: ..., zh_CN: ...}."),
              {"en": "Data lab (CPU)", "zh_CN": "数据实验（CPU）"}),
    FieldHelp("description", False, N_("One or two sentences under the title on the picker."),
              N_("Text of at most 2000 characters, or one text per language."),
              {"en": "JupyterLab with the course's packages.", "zh_CN": "带课程所需软件包的 JupyterLab。"}, ""),
    FieldHelp("image", True, N_("The Docker image every server of this template runs (the course's golden image)."),
              N_("A Docker image reference from an allowed registry or prefix (goldenhub/ by default), "
                 "with an optional tag."),
              "goldenhub/course-intro-python:latest"),
    FieldHelp("gpus", True, N_("GPUs each student gets for themselves while their server runs."),
              N_("A whole number from 0 (CPU only) to 16."), 0),
    FieldHelp("cpu", True, N_("CPUs each server may use at most."),
              N_("A number above 0 and at most 256, such as 2 or 0.5."), 1),
    FieldHelp("memory", True, N_("Memory each server may use at most; above it the kernel is stopped."),
              N_("A size from 128M to 4T: a number of bytes or with a unit K, M, G or T, such as 2G or 512M."),
              "2G"),
    FieldHelp("shm_size", False, N_("Shared memory (/dev/shm), e.g. for PyTorch DataLoader workers."),
              N_("A size from 1M up to the memory, written like memory."), "256M", "64M"),
    FieldHelp("datasets", False, N_("Read-only data mounted into every student's home."),
              N_("A list of datasets, each with name, source and target."),
              [{"name": "iris", "source": "/srv/goldenhub/datasets/iris", "target": "datasets/iris"}], []),
    FieldHelp("courseware", False, N_("A git repository pulled into the student's home at every start; "
                                      "the student's own edits win."),
              N_("repo, with optional branch and target."),
              {"repo": "https://git.example.org/intro-python.git", "branch": "main", "target": "intro-python"}),
    FieldHelp("groups", False, N_("Hub groups that may use this template; empty: the course's students and staff."),
              N_("A list of hub group names."), ["gpu-students"], []),
    FieldHelp("default_url", False, N_("The page the student's server opens on."),
              N_("/lab (JupyterLab), /lab/tree/<a file or folder in the home> such as /lab/tree/README.md, "
                 "/vscode (VS Code) or /tensorboard (TensorBoard)."), "/lab", "/lab"),
    FieldHelp("gpu_sharing", False, N_("Whether servers of this template may share a GPU with each other."),
              N_("true or false."), False, False),
    FieldHelp("idle_timeout", False, N_("Minutes a server may sit idle (no browser activity and its GPUs unused) "
                                        "before it is stopped; the home stays. 0: never stopped."),
              N_("A whole number of minutes from 0 to 10080 (a week)."), 60, 240,
              N_("60 for a template with GPUs, else 240")),
    FieldHelp("quota", False, N_("Hours each student may use per period (GPU-hours; server-hours on a CPU "
                                 "template); over it a start is refused and a running server is stopped "
                                 "after a warning. Instructors can grant extra hours."),
              N_("gpu_hours: a number above 0 and at most 100000; period: term (until the course's next term "
                 "close) or week (renews Monday 00:00 UTC)."),
              {"gpu_hours": 20, "period": "term"}),
)
DATASET_HELP = (
    FieldHelp("datasets[].name", True, N_("The dataset's name; also its default folder datasets/<name>."),
              N_("1-40 lowercase letters, digits and '-'."), "iris"),
    FieldHelp("datasets[].source", True, N_("The directory or file on this server that holds the data."),
              N_("An absolute path under the dataset roots (/srv/goldenhub/datasets by default), never a "
                 "system directory; or an NFS export nfs://SERVER/EXPORT/PATH, mounted read-only."),
              "/srv/goldenhub/datasets/iris"),
    FieldHelp("datasets[].target", False, N_("Where the data appears in the student's home."),
              N_("A folder inside the home, such as datasets/iris."), "datasets/iris", "datasets/<name>"),
)
COURSEWARE_HELP = (
    FieldHelp("courseware.repo", True, N_("The repository with the course's notebooks."),
              N_("A URL with scheme https://, http://, git:// or ssh://, without a password or token."),
              "https://git.example.org/intro-python.git"),
    FieldHelp("courseware.branch", False, N_("The branch to pull."), N_("A git branch name."), "main", "main"),
    FieldHelp("courseware.target", False, N_("The folder in the student's home that holds the courseware."),
              N_("A folder name relative to the home."), "intro-python", "<course id>"),
)
FIELDS = TEMPLATE_HELP + DATASET_HELP + COURSEWARE_HELP
COURSE_HELP = FieldHelp("course", True, N_("The course this template belongs to; its students see the template."),
                        N_("A course id: 1-40 lowercase letters, digits and '-'."), "intro-python")

# Fields written commented out in the example: they point at data and repositories that
# must exist before a student's server can start.
COMMENTED_OUT = ("datasets", "courseware", "groups", "quota")


def example_data() -> dict:
    """Every top-level field with its example value (the example, uncommented)."""
    return {f.name: f.example for f in TEMPLATE_HELP}


def _yaml_lines(key: str, value: Any) -> list[str]:
    return yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True,
                          default_flow_style=False).splitlines()


def example_yaml() -> str:
    """A new template to start from: each field with a comment (in the current language)
    saying what it means and what is allowed; datasets, courseware and groups commented out."""
    lines = ["# " + _("A new template. Lines starting with # are comments; remove the # to use a field.")]
    for f in TEMPLATE_HELP:
        lines.append("")
        lines.append(f"# {f.name}: {_(f.meaning)} {_(f.allowed)}")
        if not f.required:
            lines.append("# " + _("Optional; default: %(default)s", default=_default_text(f)))
        body = _yaml_lines(f.name, f.example)
        lines += [f"# {line}" for line in body] if f.name in COMMENTED_OUT else body
    return "\n".join(lines) + "\n"


def _default_text(f: FieldHelp) -> str:
    if f.default_note:
        return _(f.default_note)
    if f.default is None:
        return _("none")
    if isinstance(f.default, bool):
        return "true" if f.default else "false"
    if f.default in ("", [], ()):
        return _("empty")
    return str(f.default)


def help_rows() -> list[dict]:
    """The field help beside the editor, in the current language."""
    return [{"name": f.name, "required": f.required, "meaning": _(f.meaning), "allowed": _(f.allowed),
             "default": "" if f.required else _default_text(f),
             "example": yaml.safe_dump(f.example, allow_unicode=True, default_flow_style=True, sort_keys=False,
                                       width=10**6).strip().removesuffix("...").strip()}
            for f in (COURSE_HELP, *FIELDS)]
