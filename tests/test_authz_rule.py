"""The one authorisation rule (hub_ext.service.authz), as plain data: who may reset whom in
which course, see and manage which backups, and open which admin sections, for JupyterHub's
scope forms (unfiltered, `!user=`, `!group=`, `!server=`). A real catalog read from course
files; the hub's group membership is the only stand-in (a dict behind the same async call)."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from tornado import web

from hub_ext.catalog.model import load_catalog
from hub_ext.service.authz import RESET_SCOPE, TEMPLATES_SCOPE, Action, Rules

# Course sec is taught to group sec-students; course lab to everyone (no group); course
# mixed has one template for sec-students and one for ml-students.
COURSES = {
    "sec": """\
        id: sec
        title: Security
        templates:
          - {id: sec-cpu, title: Sec, image: goldenhub/x:1, gpus: 0, cpu: 1, memory: 1G, groups: [sec-students]}
        """,
    "lab": """\
        id: lab
        title: Lab
        templates:
          - {id: lab-cpu, title: Lab, image: goldenhub/x:1, gpus: 0, cpu: 1, memory: 1G}
        """,
    "mixed": """\
        id: mixed
        title: Mixed
        templates:
          - {id: mixed-a, title: A, image: goldenhub/x:1, gpus: 0, cpu: 1, memory: 1G, groups: [sec-students]}
          - {id: mixed-b, title: B, image: goldenhub/x:1, gpus: 0, cpu: 1, memory: 1G, groups: [ml-students]}
        """,
}
GROUPS = {"sec-students": {"ann", "ben"}, "ml-students": {"cat"}}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    courses = tmp_path_factory.mktemp("courses")
    for cid, text in COURSES.items():
        (courses / f"{cid}.yaml").write_text(textwrap.dedent(text))
    return load_catalog(courses)


@pytest.fixture
def rules_for(catalog):
    """Rules(user, scopes) as the service builds them for one request; `.asked` counts the
    hub lookups of group members and `.catalog_reads` the catalog reads."""
    def make(user: str, *scopes: str) -> Rules:
        asked: list[str] = []
        reads: list[int] = []

        def load():
            reads.append(1)
            return catalog

        async def members(group):
            asked.append(group)
            return GROUPS.get(group, set())

        rules = Rules(user, frozenset(scopes), load, members)
        rules.asked, rules.catalog_reads = asked, reads
        return rules

    return make


def may(rules: Rules, action: Action, student: str | None = None, course: str | None = None) -> bool:
    return asyncio.run(rules.may(action, student, course))


def test_a_student_resets_and_sees_only_their_own_and_restores_nothing(rules_for):
    ann = rules_for("ann")
    assert may(ann, Action.RESET, "ann", "lab") and may(ann, Action.SEE_BACKUP, "ann", "lab")
    assert not may(ann, Action.MANAGE_BACKUP, "ann", "lab")  # restoring is an instructor's act
    assert not may(ann, Action.RESET, "ben", "lab") and not may(ann, Action.SEE_BACKUP, "ben", "lab")
    assert not ann.may_open_admin() and not ann.manages_students()


def test_the_unfiltered_reset_scope_covers_everyone_everywhere_and_the_audit_log(rules_for):
    admin = rules_for("admin", RESET_SCOPE)
    for action in (Action.RESET, Action.SEE_BACKUP, Action.MANAGE_BACKUP):
        assert may(admin, action, "cat", "sec") and may(admin, action, "nobody", "lab")
    assert admin.may_now(Action.READ_AUDIT)
    assert not admin.may_now(Action.TEMPLATES) and not admin.may_now(Action.BRANDING)  # other scopes
    assert admin.asked == []  # no hub lookup needed


def test_a_user_filter_covers_that_student_in_every_course_and_nobody_else(rules_for):
    tutor = rules_for("tutor", f"{RESET_SCOPE}!user=ben")
    assert may(tutor, Action.RESET, "ben", "lab") and may(tutor, Action.MANAGE_BACKUP, "ben", "sec")
    assert not may(tutor, Action.RESET, "ann", "sec")
    assert not tutor.may_now(Action.READ_AUDIT)  # the whole audit log needs the unfiltered scope


def test_a_group_filter_covers_the_groups_members_in_the_groups_courses_only(rules_for):
    teacher = rules_for("teacher", f"{RESET_SCOPE}!group=sec-students")
    assert may(teacher, Action.RESET, "ann", "sec")
    assert may(teacher, Action.RESET, "ben", "mixed")  # one of mixed's templates is sec-students'
    assert not may(teacher, Action.RESET, "cat", "sec")  # not a member
    assert not may(teacher, Action.RESET, "ann", "lab")  # a member, but lab is not the group's course
    assert not may(teacher, Action.RESET, "ann", "nope")  # no such course


def test_an_instructor_sees_and_manages_the_backups_of_the_students_they_may_reset(rules_for):
    """The bug this rule fixed: the admin page offered the group instructor the reset
    actions but listed none of their students' backups. Whatever may be reset may be seen."""
    teacher = rules_for("teacher", f"{RESET_SCOPE}!group=sec-students")
    backups = [("ann", "sec"), ("ann", "lab"), ("cat", "sec"), ("ben", "mixed"), ("cat", "mixed")]
    seen = asyncio.run(teacher.only_allowed(Action.SEE_BACKUP, backups, key=lambda b: b))
    assert seen == [("ann", "sec"), ("ben", "mixed")]
    for student, course in backups:
        assert (may(teacher, Action.SEE_BACKUP, student, course) == may(teacher, Action.MANAGE_BACKUP, student, course)
                == may(teacher, Action.RESET, student, course))


def test_group_members_and_the_catalog_are_asked_once_per_request(rules_for):
    teacher = rules_for("teacher", f"{RESET_SCOPE}!group=sec-students", f"{RESET_SCOPE}!group=ml-students")

    async def many_checks():
        return [await teacher.may(Action.RESET, s, c) for s in ("ann", "ben", "cat", "dan") for c in ("sec", "mixed")]

    assert asyncio.run(many_checks()) == [True, True, True, True, False, True, False, False]
    assert sorted(teacher.asked) == ["ml-students", "sec-students"]
    assert len(teacher.catalog_reads) == 1


def test_a_server_filter_grants_no_reset(rules_for):
    other = rules_for("other", f"{RESET_SCOPE}!server=ann/")
    assert not may(other, Action.RESET, "ann", "lab") and not may(other, Action.MANAGE_BACKUP, "ann", "lab")


def test_the_admin_page_shows_a_course_only_to_who_may_reset_some_of_its_students(rules_for):
    teacher = rules_for("teacher", f"{RESET_SCOPE}!group=sec-students")
    shown = [c for c in ("sec", "lab", "mixed") if asyncio.run(teacher.may_reset_some_in(c))]
    assert shown == ["sec", "mixed"]
    admin = rules_for("admin", RESET_SCOPE)
    assert [c for c in ("sec", "lab") if asyncio.run(admin.may_reset_some_in(c))] == ["sec", "lab"]
    assert not asyncio.run(rules_for("ann").may_reset_some_in("sec"))


def test_a_filtered_templates_scope_opens_the_admin_page_but_changes_no_template(rules_for):
    editor = rules_for("editor", f"{TEMPLATES_SCOPE}!group=sec-students")
    assert editor.may_open_admin() and not editor.may_now(Action.TEMPLATES)
    with pytest.raises(web.HTTPError) as refused:
        editor.require_now(Action.TEMPLATES)
    assert refused.value.status_code == 403 and TEMPLATES_SCOPE in refused.value.log_message


def test_a_refusal_says_whose_environment_and_which_scope(rules_for):
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(rules_for("ann").require(Action.RESET, "ben", "sec"))
    assert refused.value.status_code == 403
    assert refused.value.log_message == (f"You may not reset ben's sec environment: that needs the scope "
                                         f"{RESET_SCOPE} for them or their course group")
