"""The course catalog: course YAML files → validated Course and Template objects.

One loader/validator serves every way a template arrives (files, and later the API), so a
bad field gets the same message everywhere: where it is, what was given, what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub_ext import contract
from hub_ext.catalog import rules, usage_rules
from hub_ext.catalog.usage_rules import Quota
from hub_ext.i18n import N_, _

# The home directory of the student inside every golden image (user jovyan, uid 1000).
HOME = "/home/jovyan"


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # absolute host path, mounted read-only
    target: str  # absolute path inside the student's home


@dataclass(frozen=True)
class Courseware:
    repo: str
    branch: str
    target: str  # directory relative to the student's home


@dataclass(frozen=True)
class Template:
    """What one student server is made of (the "golden job")."""

    id: str
    course: str
    title: str
    description: str
    image: str
    gpus: int
    cpu: float
    memory: int  # bytes
    shm_size: int  # bytes
    datasets: tuple[Dataset, ...] = ()
    courseware: Courseware | None = None
    groups: tuple[str, ...] = ()  # empty: the course's members (see Catalog.templates_for)
    default_url: str = "/lab"
    gpu_sharing: bool = False  # servers of this template may share GPUs with each other
    source: str = ""  # where it was defined, for messages
    runtime: bool = False  # created through the API: its datasets must stay under the dataset roots
    idle_timeout: int = usage_rules.CPU_IDLE_DEFAULT  # minutes idle before culling; 0: never
    quota: Quota | None = None  # hours per period (GPU-hours; server-hours on CPU); None: unmetered
    # Set only by a publish's pin (hub_ext.images.versions.apply_pins): the published version the
    # image (then a by-digest reference) is, and the image the file or API declared.
    pinned_version: int = 0
    declared_image: str = ""


ACCESS_ENROLLED, ACCESS_EVERYONE = "enrolled", "everyone"
ACCESS_VALUES = (ACCESS_ENROLLED, ACCESS_EVERYONE)


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    description: str
    framework: str | None  # images/frameworks/<name> its image builds on; None: not built here
    templates: tuple[Template, ...]
    source: str = ""
    # Who sees the course's templates: "enrolled" (its student and staff groups: roster or
    # LMS) or "everyone" logged in (the demo's sample courses).
    access: str = ACCESS_ENROLLED
    # LMS course ids (LTI 1.3 context ids) whose launches enrol into this course.
    lms_contexts: tuple[str, ...] = ()

    @property
    def groups(self) -> set[str]:
        """Every hub group that gives access to some template of this course."""
        return {contract.course_group(self.id), contract.staff_group(self.id),
                *(g for t in self.templates for g in t.groups)}

    def allows(self, template: Template, user_groups: set[str]) -> bool:
        """Whether a user in these groups may use this course's template.

        Rules: the course's staff may use all of its templates. A template that names groups
        is for those groups only (e.g. a GPU template for an advanced group). Otherwise the
        template is for the course's enrolled students, or for everyone when the course's
        access is "everyone"."""
        if contract.staff_group(self.id) in user_groups:
            return True
        if template.groups:
            return bool(user_groups & set(template.groups))
        return self.access == ACCESS_EVERYONE or contract.course_group(self.id) in user_groups


@dataclass
class Catalog:
    courses: dict[str, Course] = field(default_factory=dict)

    @property
    def templates(self) -> dict[str, Template]:
        return {t.id: t for c in self.courses.values() for t in c.templates}

    def templates_for(self, user_groups: set[str]) -> list[Template]:
        """The templates a user in these groups may use, in catalog order."""
        return [t for c in self.courses.values() for t in c.templates if c.allows(t, user_groups)]

    def course_of_context(self, context_id: str) -> Course | None:
        """The course an LMS launch from this context id enrols into (None: not linked)."""
        return next((c for c in self.courses.values() if context_id in c.lms_contexts), None)


class CatalogError(ValueError):
    """One or more problems in course definitions; str() lists them all, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


COURSE_FIELDS = {
    "id": True, "title": True, "description": False, "framework": False, "templates": True,
    "access": False, "lms_contexts": False,
}
TEMPLATE_FIELDS = {
    "id": True, "title": True, "description": False, "image": True, "gpus": True,
    "cpu": True, "memory": True, "shm_size": False, "datasets": False,
    "courseware": False, "groups": False, "default_url": False, "gpu_sharing": False,
    "idle_timeout": False, "quota": False,
}
DATASET_FIELDS = {"name": True, "source": True, "target": False}
COURSEWARE_FIELDS = {"repo": True, "branch": False, "target": False}


class _Checker:
    """Collects problems for one source so a file reports all of its errors at once."""

    def __init__(self, source: str, git_schemes: tuple[str, ...] = rules.GIT_SCHEMES):
        self.source = source
        self.git_schemes = git_schemes
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def mapping(self, data: Any, where: str, fields: dict[str, bool]) -> dict | None:
        if not isinstance(data, dict):
            self.add(where, _("expected a mapping of fields, got %(kind)s", kind=_kind(data)))
            return None
        allowed = ", ".join(fields)
        for key in data:
            if key not in fields:
                self.add(f"{where}.{key}" if where else str(key), _("unknown field; allowed fields: %(allowed)s",
                                                                    allowed=allowed))
        for key, required in fields.items():
            if required and key not in data:
                self.add(f"{where}.{key}" if where else key, _("missing (required)"))
        return data

    def check(self, where: str, value: Any, parse) -> Any:
        """Run a rules.* parser; a rules.RuleError becomes a problem and the result None."""
        try:
            return parse(value)
        except rules.RuleError as e:
            self.add(where, str(e))
            return None


def _kind(value: Any) -> str:
    kinds = {dict: N_("a mapping"), list: N_("a list"), str: N_("text"), bool: N_("true/false"),
             int: N_("a number"), float: N_("a number"), type(None): N_("nothing")}
    return _(kinds[type(value)]) if type(value) in kinds else type(value).__name__


def parse_course(data: Any, source: str, git_schemes: tuple[str, ...] = rules.GIT_SCHEMES) -> Course:
    """Validate one course document; raises CatalogError listing every problem."""
    ck = _Checker(source, git_schemes)
    course = _parse_course(ck, data)
    if ck.problems:
        raise CatalogError(ck.problems)
    return course


def parse_template(data: Any, source: str, course_id: str,
                   git_schemes: tuple[str, ...] = rules.GIT_SCHEMES) -> Template:
    """Validate one template (as edited through the API); raises CatalogError listing every problem."""
    ck = _Checker(source, git_schemes)
    template = _parse_template(ck, data, "template", course_id)
    if ck.problems:
        raise CatalogError(ck.problems)
    return template


def _parse_course(ck: _Checker, data: Any) -> Course | None:
    if ck.mapping(data, "", COURSE_FIELDS) is None:
        return None
    cid = ck.check("id", data.get("id"), rules.identifier)
    title = ck.check("title", data.get("title"), rules.title)
    description = ck.check("description", data.get("description", ""), rules.text)
    framework = data.get("framework")
    if framework is not None:
        framework = ck.check("framework", framework, rules.identifier)
    access = ck.check("access", data.get("access", ACCESS_ENROLLED), rules.access_mode)
    lms_contexts = ck.check("lms_contexts", data.get("lms_contexts", []), rules.lms_context_list)
    raw_templates = data.get("templates")
    templates: list[Template] = []
    if "templates" in data:
        if not isinstance(raw_templates, list) or not raw_templates:
            ck.add("templates", _("expected a non-empty list of templates, got %(kind)s", kind=_kind(raw_templates)))
        else:
            seen: set[str] = set()
            for i, raw in enumerate(raw_templates):
                t = _parse_template(ck, raw, f"templates[{i}]", cid or "")
                if t is None:
                    continue
                if t.id in seen:
                    ck.add(f"templates[{i}].id", f"duplicate template id {t.id!r} in this course")
                seen.add(t.id)
                templates.append(t)
    if ck.problems:
        return None
    return Course(cid, title, description, framework, tuple(templates), ck.source, access, lms_contexts)


def _parse_template(ck: _Checker, data: Any, where: str, course_id: str) -> Template | None:
    before = len(ck.problems)
    if ck.mapping(data, where, TEMPLATE_FIELDS) is None:
        return None
    get = data.get
    tid = ck.check(f"{where}.id", get("id"), rules.identifier)
    values = dict(
        title=ck.check(f"{where}.title", get("title"), rules.title),
        description=ck.check(f"{where}.description", get("description", ""), rules.text),
        image=ck.check(f"{where}.image", get("image"), rules.image_name),
        gpus=ck.check(f"{where}.gpus", get("gpus"), rules.gpu_count),
        cpu=ck.check(f"{where}.cpu", get("cpu"), rules.cpu_count),
        memory=ck.check(f"{where}.memory", get("memory"), rules.memory_size),
        shm_size=ck.check(f"{where}.shm_size", get("shm_size", "64M"), rules.shm_size),
        groups=ck.check(f"{where}.groups", get("groups", []), rules.group_list),
        default_url=ck.check(f"{where}.default_url", get("default_url", "/lab"), rules.default_url),
        gpu_sharing=ck.check(f"{where}.gpu_sharing", get("gpu_sharing", False), rules.boolean),
        quota=ck.check(f"{where}.quota", get("quota"), usage_rules.quota),
    )
    values["idle_timeout"] = ck.check(f"{where}.idle_timeout",
                                      get("idle_timeout", usage_rules.default_idle_timeout(values["gpus"])),
                                      usage_rules.idle_timeout)
    courseware = _parse_courseware(ck, get("courseware"), f"{where}.courseware", course_id)
    datasets = _parse_datasets(ck, get("datasets", []), f"{where}.datasets")
    if courseware and datasets:
        for i, d in enumerate(datasets):
            if rules.paths_overlap(d.target, f"{HOME}/{courseware.target}"):
                ck.add(f"{where}.datasets[{i}].target",
                       f"{d.target} overlaps the courseware directory ~/{courseware.target}; choose another target")
    if values["memory"] and values["shm_size"] and values["shm_size"] > values["memory"]:
        ck.add(f"{where}.shm_size", "must not be larger than memory")
    if len(ck.problems) > before:
        return None
    return Template(id=tid, course=course_id, datasets=tuple(datasets), courseware=courseware,
                    source=ck.source, **values)


def _parse_courseware(ck: _Checker, data: Any, where: str, course_id: str) -> Courseware | None:
    if data is None:
        return None
    if ck.mapping(data, where, COURSEWARE_FIELDS) is None:
        return None
    repo = ck.check(f"{where}.repo", data.get("repo"), lambda v: rules.git_url(v, ck.git_schemes))
    branch = ck.check(f"{where}.branch", data.get("branch", "main"), rules.git_branch)
    target = ck.check(f"{where}.target", data.get("target", course_id or "courseware"), rules.home_subdir)
    if None in (repo, branch, target):
        return None
    return Courseware(repo, branch, target)


def _parse_datasets(ck: _Checker, data: Any, where: str) -> list[Dataset]:
    if not isinstance(data, list):
        ck.add(where, _("expected a list of datasets, got %(kind)s", kind=_kind(data)))
        return []
    datasets: list[Dataset] = []
    for i, raw in enumerate(data):
        at = f"{where}[{i}]"
        if ck.mapping(raw, at, DATASET_FIELDS) is None:
            continue
        name = ck.check(f"{at}.name", raw.get("name"), rules.identifier)
        source = ck.check(f"{at}.source", raw.get("source"), rules.dataset_source)
        default_target = f"datasets/{name}" if name else None
        target = ck.check(f"{at}.target", raw.get("target", default_target), rules.mount_target)
        if None in (name, source, target):
            continue
        for j, other in enumerate(datasets):
            if other.name == name:
                ck.add(f"{at}.name", f"duplicate dataset name {name!r} (also datasets[{j}])")
            elif rules.paths_overlap(other.target, target):
                ck.add(f"{at}.target", f"{target} overlaps {other.target} (datasets[{j}])")
        datasets.append(Dataset(name, source, target))
    return datasets


# The spawner reads every course file at each start, on the hub's event loop: libyaml's safe
# loader (same documents, same errors) parses them ten times faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_course_file(path: Path, git_schemes: tuple[str, ...] = rules.GIT_SCHEMES) -> Course:
    """Parse and validate one course YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogError([f"{path}: not UTF-8 text"])
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(e, "problem", None) or str(e)
        raise CatalogError([f"{path}: {where}: invalid YAML ({problem})"])
    return parse_course(data, str(path), git_schemes)


def load_catalog(directory: Path | str, git_schemes: tuple[str, ...] = rules.GIT_SCHEMES) -> Catalog:
    """Load every courses/*.yaml; raises CatalogError listing all problems in all files.
    `git_schemes` is the allowlist of courseware URL schemes."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError([f"{directory}: not a directory of course files"])
    problems: list[str] = []
    catalog = Catalog()
    template_sources: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            course = load_course_file(path, git_schemes)
        except CatalogError as e:
            problems.extend(e.problems)
            continue
        if course.id in catalog.courses:
            problems.append(f"{path}: id: duplicate course id {course.id!r} (also in {catalog.courses[course.id].source})")
            continue
        for t in course.templates:
            if t.id in template_sources:
                problems.append(f"{path}: templates: duplicate template id {t.id!r} (also in {template_sources[t.id]}); "
                                "template ids must be unique across all courses")
            template_sources[t.id] = str(path)
        catalog.courses[course.id] = course
    if problems:
        raise CatalogError(problems)
    return catalog
