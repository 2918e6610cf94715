"""Who may do what in the goldenhub service: the one authorisation rule, asked by every API
handler and every page alike, so that what a page offers is exactly what the API allows.

Rules (JupyterHub's scope semantics: `custom:goldenhub:<name>`, optionally filtered with
`!user=<name>` or `!group=<group>`; several filters of one scope add up):

- RESET a student's environment in a course (and stop their server from the admin page):
  the student themselves, or whoever holds the reset scope *for that student in that
  course*. The reset scope is for a student in a course when it is unfiltered, filtered to
  `!user=<student>`, or filtered to `!group=<g>` where g is one of the course's groups (the
  groups of its templates) and the student is a member of g. A `!server=` filter names one
  server, not a student's homes: it grants nothing here. Group filters are resolved to the
  groups' members through the hub here, once per request, and nowhere else.
- MANAGE_BACKUP (restore or delete) a student's backup of a course: the reset scope for that
  student in that course, as above; a student may not restore their own.
- SEE_BACKUP: one's own backups, and those one may manage.
- READ_AUDIT (the whole audit log), TEMPLATES (every template in full, and every change),
  BRANDING (upload or reset the logo and favicon): the unfiltered scope.
- ENROL a course (import its roster, unenrol): the enrol scope unfiltered, or filtered to
  `!group=course:<id>` (the course's student group, contract.course_group) for that course.
  Only that group: a group some template also lists is not the course.
- CLOSE_TERM of a course: ENROL for it, and the reset scope for all of its students
  (unfiltered, or filtered to the course's student group).
- PUBLISH a course's golden image (publish, roll back, restart idle servers on the pinned
  version): the publish scope unfiltered, or filtered to `!group=course:<id>` for that
  course, as ENROL.
- ACCOUNTS (reset a local account's password): the unfiltered accounts scope only. A
  password reset hands the whole account (every course of it) to whoever logs in next, so
  no course filter can limit it.
- Course staff: a member of a course's staff group (contract.staff_group: its instructors
  and teaching assistants, from the roster or the LMS) holds, for this service, the reset,
  enrol and publish scopes filtered to the course's student group, exactly as if a role granted
  them (staff_scopes). Membership is read from the hub for each request that shows any
  staff group, so a removed instructor loses these at once.
- The admin page opens for any goldenhub scope, filtered or not; each of its sections shows
  only what the rules above allow: a course's students where the caller may reset them (so
  an instructor sees their course only, and a templates- or branding-only admin no student
  list), the backups they may see with restore/delete where they may manage them, the audit
  log with READ_AUDIT.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from jupyterhub.scopes import Scope, parse_scopes
from jupyterhub.services.auth import check_scopes
from tornado import web

from hub_ext import contract
from hub_ext.i18n import N_, _

PREFIX = "custom:goldenhub:"
RESET_SCOPE = PREFIX + "reset"
TEMPLATES_SCOPE = PREFIX + "templates"
BRANDING_SCOPE = PREFIX + "branding"
ENROL_SCOPE = PREFIX + "enrol"
ACCOUNTS_SCOPE = PREFIX + "accounts"
PUBLISH_SCOPE = PREFIX + "publish"


class Action(enum.Enum):
    """What an identity may ask for."""

    RESET = "reset"                  # a student's environment in a course (or stop their server)
    MANAGE_BACKUP = "manage backup"  # restore or delete a student's backup of a course
    SEE_BACKUP = "see backup"        # list a student's backups of a course
    READ_AUDIT = "read audit"
    TEMPLATES = "templates"          # every template in full, and every change
    BRANDING = "branding"
    ENROL = "enrol"                  # a course's roster: import, unenrol
    CLOSE_TERM = "close term"        # a course's term: stop, back up every home, unenrol
    ACCOUNTS = "accounts"            # reset a local account's password
    PUBLISH = "publish"              # a course's golden image: publish, roll back, restart idle servers on it


SCOPE = {Action.RESET: RESET_SCOPE, Action.MANAGE_BACKUP: RESET_SCOPE, Action.SEE_BACKUP: RESET_SCOPE,
         Action.READ_AUDIT: RESET_SCOPE, Action.TEMPLATES: TEMPLATES_SCOPE, Action.BRANDING: BRANDING_SCOPE,
         Action.ENROL: ENROL_SCOPE, Action.CLOSE_TERM: ENROL_SCOPE, Action.ACCOUNTS: ACCOUNTS_SCOPE, Action.PUBLISH: PUBLISH_SCOPE}
FOR_A_STUDENT = (Action.RESET, Action.MANAGE_BACKUP, Action.SEE_BACKUP)
FOR_A_COURSE = (Action.ENROL, Action.CLOSE_TERM, Action.PUBLISH)
ADMIN_PAGE_SCOPES = (RESET_SCOPE, TEMPLATES_SCOPE, BRANDING_SCOPE, ENROL_SCOPE, ACCOUNTS_SCOPE, PUBLISH_SCOPE)


def staff_scopes(groups: Iterable[str]) -> set[str]:
    """The scopes a member of these hub groups holds as course staff (see the rules above)."""
    scopes = set()
    for group in groups:
        found = contract.course_of_group(group)
        if found and found[1]:
            students = contract.course_group(found[0])
            scopes |= {f"{RESET_SCOPE}!group={students}", f"{ENROL_SCOPE}!group={students}",
                       f"{PUBLISH_SCOPE}!group={students}"}
    return scopes


def covers_course(scopes: Iterable[str], scope: str, course: str) -> bool:
    """Whether `scope` is held unfiltered or filtered to the course's student group."""
    filters = parse_scopes(frozenset(scopes)).get(scope)
    if filters is None:
        return False
    return filters == Scope.ALL or contract.course_group(course) in filters.get("group", ())


def holds(scopes: Iterable[str], scope: str) -> bool:
    """Whether these scopes include `scope` itself, unfiltered (a filtered form is not enough)."""
    return bool(check_scopes({scope}, set(scopes)))


def holds_any_form(scopes: Iterable[str], scope: str) -> bool:
    """Whether these scopes include `scope`, unfiltered or with any filter."""
    return scope in parse_scopes(frozenset(scopes))


@dataclass
class Rules:
    """The rule for one caller, for one request.

    `load_catalog()` gives the catalog (courses and their templates' groups), read once and
    only when a group filter needs it; `group_members(group)` (async) the names in a hub
    group, asked at most once per group."""

    user: str
    scopes: frozenset[str]
    load_catalog: Callable[[], object]
    group_members: Callable[[str], Awaitable[Iterable[str]]]
    _course_groups: dict[str, set[str]] | None = None
    _members: dict[str, set[str]] = field(default_factory=dict)

    def may_now(self, action: Action) -> bool:
        """For the actions that concern no student: templates, branding, the audit log,
        password resets."""
        if action in FOR_A_STUDENT:
            raise ValueError(f"{action} is decided for a student and a course: use may()")
        if action in FOR_A_COURSE:
            raise ValueError(f"{action} is decided for a course: use may_for_course()")
        return holds(self.scopes, SCOPE[action])

    def may_for_course(self, action: Action, course: str) -> bool:
        """ENROL, CLOSE_TERM or PUBLISH for one course."""
        if action not in FOR_A_COURSE:
            raise ValueError(f"{action} is not decided for a course alone")
        if action is Action.PUBLISH:
            return covers_course(self.scopes, PUBLISH_SCOPE, course)
        allowed = covers_course(self.scopes, ENROL_SCOPE, course)
        if action is Action.CLOSE_TERM:
            allowed = allowed and covers_course(self.scopes, RESET_SCOPE, course)
        return allowed

    def require_for_course(self, action: Action, course: str) -> None:
        if not self.may_for_course(action, course):
            raise web.HTTPError(403, refusal(action, course=course))

    def courses_to_enrol(self, course_ids: Iterable[str]) -> list[str]:
        """Of these courses, those whose roster the caller may change (in order)."""
        return [c for c in course_ids if self.may_for_course(Action.ENROL, c)]

    async def may(self, action: Action, student: str | None = None, course: str | None = None) -> bool:
        """May this caller do `action` (to `student` in `course`, for the actions on a student)?"""
        if action in FOR_A_COURSE:
            return self.may_for_course(action, course or "")
        if action not in FOR_A_STUDENT:
            return self.may_now(action)
        if action in (Action.RESET, Action.SEE_BACKUP) and student == self.user:
            return True
        return await self._reset_scope_covers(student or "", course or "")

    async def _reset_scope_covers(self, student: str, course: str) -> bool:
        filters = parse_scopes(self.scopes).get(RESET_SCOPE)
        if filters is None:
            return False
        if filters == Scope.ALL or student in filters.get("user", ()):
            return True
        groups = set(filters.get("group", ()))
        if not groups:
            return False
        for group in sorted(groups & await self._groups_of_course(course)):
            if group not in self._members:
                self._members[group] = set(await self.group_members(group))
            if student in self._members[group]:
                return True
        return False

    async def _groups_of_course(self, course: str) -> set[str]:
        if self._course_groups is None:
            catalog = await asyncio.to_thread(self.load_catalog)
            self._course_groups = {cid: c.groups - {contract.staff_group(cid)} for cid, c in catalog.courses.items()}
        # A course known only from its homes (e.g. its file was removed) still has its student group.
        return self._course_groups.get(course, {contract.course_group(course)} if course else set())

    # --- what handlers and pages ask -----------------------------------------------------------

    async def may_reset_some_in(self, course: str) -> bool:
        """Whether the reset scope may cover some student of this course: the course's
        section of the admin page, and its course-wide reset (of those it covers)."""
        filters = parse_scopes(self.scopes).get(RESET_SCOPE)
        if filters is None:
            return False
        if filters == Scope.ALL or filters.get("user"):
            return True
        return bool(set(filters.get("group", ())) & await self._groups_of_course(course))

    def manages_students(self) -> bool:
        """Whether the caller holds the reset scope in any form: may act on some students."""
        return holds_any_form(self.scopes, RESET_SCOPE)

    def may_open_admin(self) -> bool:
        return any(holds_any_form(self.scopes, s) for s in ADMIN_PAGE_SCOPES)

    def require_admin(self) -> None:
        if not self.may_open_admin():
            raise web.HTTPError(403, _("This page is for instructors, teaching assistants and administrators: it "
                                       "needs the scope %(reset)s or %(enrol)s (filtered or not), %(templates)s, "
                                       "%(branding)s or %(accounts)s; course staff have it for their courses",
                                       reset=RESET_SCOPE, enrol=ENROL_SCOPE, templates=TEMPLATES_SCOPE,
                                       branding=BRANDING_SCOPE, accounts=ACCOUNTS_SCOPE))

    def require_manager(self, what: str) -> None:
        """403 for `what` (e.g. "Restoring or deleting backups") unless the caller holds the
        reset scope in some form; whose and which course is decided per item afterwards."""
        if not self.manages_students():
            raise web.HTTPError(403, _("%(what)s needs the scope %(scope)s", what=what, scope=RESET_SCOPE))

    def require_now(self, action: Action, what: str | None = None) -> None:
        if not self.may_now(action):
            raise web.HTTPError(403, refusal(action, what=what))

    async def require(self, action: Action, student: str | None = None, course: str | None = None,
                      what: str | None = None) -> None:
        """403 with a sentence saying what is needed, unless the caller may."""
        if not await self.may(action, student, course):
            raise web.HTTPError(403, refusal(action, student, course, what))

    async def only_allowed(self, action: Action, items: Iterable, key: Callable) -> list:
        """The items (in order) for whose `key(item)` = (student, course) the caller may `action`."""
        return [x for x in items if await self.may(action, *key(x))]


def refusal(action: Action, student: str | None = None, course: str | None = None, what: str | None = None) -> str:
    """The sentence of a 403: what was refused and which scope it needs (in the caller's language)."""
    if action is Action.RESET and student is None:
        return _("You may not reset the students of %(course)s: that needs the scope %(scope)s for their course group",
                 course=course, scope=RESET_SCOPE)
    if action is Action.RESET:
        return _("You may not reset %(student)s's %(course)s environment: that needs the scope %(scope)s for them or "
                 "their course group", student=student, course=course, scope=RESET_SCOPE)
    if action is Action.MANAGE_BACKUP:
        return _("You may not restore or delete %(student)s's %(course)s backups: that needs the scope %(scope)s for "
                 "them or their course group", student=student, course=course, scope=RESET_SCOPE)
    if action is Action.SEE_BACKUP:
        return _("Listing %(student)s's backups needs the scope %(scope)s", student=student, scope=RESET_SCOPE)
    if action is Action.ENROL:
        return _("You may not change the enrolment of %(course)s: that needs the scope %(scope)s for the group "
                 "%(group)s (its instructors and TAs have it)", course=course, scope=ENROL_SCOPE,
                 group=contract.course_group(course))
    if action is Action.CLOSE_TERM:
        return _("You may not close the term of %(course)s: that needs the scopes %(enrol)s and %(reset)s for the "
                 "group %(group)s (its instructors and TAs have them)", course=course, enrol=ENROL_SCOPE,
                 reset=RESET_SCOPE, group=contract.course_group(course))
    if action is Action.PUBLISH:
        return _("You may not publish or roll back the image of %(course)s: that needs the scope %(scope)s for the "
                 "group %(group)s (its instructors and TAs have it)", course=course, scope=PUBLISH_SCOPE,
                 group=contract.course_group(course))
    what = what or _({Action.READ_AUDIT: N_("The audit log"), Action.TEMPLATES: N_("Changing templates"),
                      Action.BRANDING: N_("Changing the logo or favicon"),
                      Action.ACCOUNTS: N_("Resetting a password (admins only)")}[action])
    return _("%(what)s needs the scope %(scope)s", what=what, scope=SCOPE[action])
