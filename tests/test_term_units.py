"""End of term, the pure parts: export names are safe and injective, the export directory is
private and never reused, the servers and homes a close acts on are found from the hub's
models, the summary says what happened and what failed, who may close which course, and the
command line refuses before anything changes."""

from __future__ import annotations

import re
import stat
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_ext import contract
from hub_ext.cli.main import main as goldenhub_main
from hub_ext.homes import term
from hub_ext.service import authz, term_api

WHEN = datetime(2026, 6, 30, 17, 5, 9, tzinfo=timezone(timedelta(hours=8)))


def test_export_dir_is_named_by_course_and_utc_time():
    assert term.export_dir_name("intro-python", WHEN) == "intro-python-20260630T090509Z"


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_export_file_names_are_plain_file_names_and_differ_for_different_users(a, b):
    for name in (term.export_file_name(a), term.export_file_name(a, 2)):
        assert re.fullmatch(r"[a-z0-9_][a-zA-Z0-9_-]*(\.2)?\.tar", name), name  # no '/', '..', leading '.' or '-'
    if a != b:
        assert term.export_file_name(a) != term.export_file_name(b)
    assert term.export_file_name(a) != term.export_file_name(a, 2)


def test_export_file_names_of_near_identical_usernames_differ():
    users = [":", "_:", "-", "--", "a", "A", "a-2D", "a.2", "x" * 60, "x" * 61, ":" + "x" * 60, "_" + ":" * 30]
    names = [term.export_file_name(u, n) for u in users for n in (1, 2)]
    assert len(set(names)) == len(names), names


def test_export_file_names_of_hostile_usernames_stay_inside_the_directory(tmp_path):
    for user in ("../../etc/passwd", "/abs", ".hidden", "a/../../b", "名字", "x\0y"):
        path = (tmp_path / term.export_file_name(user)).resolve()
        assert path.parent == tmp_path.resolve(), user


def test_export_dir_is_private_and_a_second_close_in_the_same_second_gets_its_own(tmp_path):
    parent = tmp_path / "exports"
    first = term.make_export_dir(parent, "t9a", WHEN)
    second = term.make_export_dir(parent, "t9a", WHEN)
    assert first.name == "t9a-20260630T090509Z" and second.name == "t9a-20260630T090509Z-2"
    for d in (parent, first, second):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def server(template: str, ready=True, pending=None, homes=None, options=True) -> dict:
    return {"ready": ready, "pending": pending, "user_options": {"template": template} if options else {},
            "state": {contract.STATE_TEMPLATE: template, contract.STATE_HOMES: homes or {}}}


def test_course_servers_are_the_running_or_starting_ones_of_its_templates():
    users = [
        {"name": "ann", "servers": {"": server("a-cpu")}},
        {"name": "bob", "servers": {"": server("b-cpu")}},  # another course
        {"name": "cy", "servers": {"": server("a-cpu", ready=False)}},  # stopped
        {"name": "dee", "servers": {"gpu": server("a-gpu", ready=False, pending="spawn")}},
        {"name": "eve", "servers": {"": server("a-cpu", options=False)}},  # template from its state
    ]
    assert term.course_servers(users, {"a-cpu", "a-gpu"}) == [("ann", ""), ("dee", "gpu"), ("eve", "")]


def test_recorded_homes_are_this_deployments_homes_of_the_course_only():
    users = [
        {"name": "ann", "servers": {"": server("a-cpu", homes={"a": "gh-home-ann--a", "b": "gh-home-ann--b"})}},
        {"name": "bob", "servers": {"": server("a-cpu", homes={"a": "other-home-bob--a"})}},  # another prefix
        {"name": "cy", "servers": {}},
    ]
    assert term.recorded_homes(users, "a", "gh") == {"gh-home-ann--a": "ann"}


def test_summary_says_what_happened_and_every_problem():
    result = {"course": "t9a", "homes_backed_up": 3, "servers_stopped": 1, "students_unenrolled": 4, "staff_kept": 1,
              "export_dir": "/s/exports/t9a-x", "exported": 3, "failures": []}
    assert term.summary(result) == ("Term of t9a closed: 3 homes moved to backups, 1 server stopped, "
                                    "4 students unenrolled, 1 staff member kept; 3 tar files exported to /s/exports/t9a-x")
    result["failures"] = [{"user": "bob", "message": "the home is in use"}]
    line = term.summary(result)
    assert "1 problem, nothing was deleted: bob: the home is in use" in line
    assert line.endswith("Close the term again to retry")


def rules(groups=(), scopes=()) -> authz.Rules:
    async def members(group):
        return []
    return authz.Rules("someone", frozenset(set(scopes) | authz.staff_scopes(groups)), lambda: None, members)


def test_only_admins_and_the_courses_own_staff_may_close_its_term():
    instructor_of_a = rules(groups=[contract.staff_group("a"), contract.course_group("b")])
    assert instructor_of_a.may_for_course(authz.Action.CLOSE_TERM, "a")
    assert not instructor_of_a.may_for_course(authz.Action.CLOSE_TERM, "b")  # a student of b, not its staff
    student = rules(groups=[contract.course_group("a")])
    assert not student.may_for_course(authz.Action.CLOSE_TERM, "a")
    enrol_only = rules(scopes=[f"{authz.ENROL_SCOPE}!group=course:a"])  # a roster clerk cannot move homes
    assert not enrol_only.may_for_course(authz.Action.CLOSE_TERM, "a")
    admin = rules(scopes=[authz.ENROL_SCOPE, authz.RESET_SCOPE])
    assert admin.may_for_course(authz.Action.CLOSE_TERM, "b")
    with pytest.raises(Exception) as refused:
        instructor_of_a.require_for_course(authz.Action.CLOSE_TERM, "b")
    assert refused.value.status_code == 403 and "You may not close the term of b" in refused.value.log_message


def test_routes_take_only_course_ids():
    patterns = [re.compile(p) for p, _ in term_api.handlers("/services/goldenhub/")]
    assert patterns[0].fullmatch("/services/goldenhub/api/courses/intro-python/term-close")
    assert patterns[1].fullmatch("/services/goldenhub/admin/courses/t9a/close")
    for bad in ("..", "A", "a/b", "a%2Fb", "x" * 41, ""):
        assert not patterns[0].fullmatch(f"/services/goldenhub/api/courses/{bad}/term-close"), bad
    assert "nothing was changed" in term_api.confirmation_needed("t9a")


def test_the_command_refuses_an_export_path_that_is_a_file_before_closing_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-used")
    monkeypatch.setenv("GOLDENHUB_HUB_URL", "http://127.0.0.1:9")  # nothing listens: never reached
    a_file = tmp_path / "f"
    a_file.write_text("x")
    assert goldenhub_main(["term", "close", "t9a", "--export", str(a_file), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "not a directory" in err and "Nothing was changed" in err and "Cannot reach" not in err


def test_the_command_needs_the_typed_course_id(capsys, monkeypatch):
    import io

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-used")
    monkeypatch.setenv("GOLDENHUB_HUB_URL", "http://127.0.0.1:9")
    monkeypatch.setattr("sys.stdin", io.StringIO("t9b\n"))
    assert goldenhub_main(["term", "close", "t9a"]) == 1
    err = capsys.readouterr().err
    assert "every student's home in t9a moves to a dated backup" in err
    assert "Not confirmed (got 't9b'); nothing changed" in err


async def test_a_server_the_close_stops_itself_is_told_why(tmp_path):
    """A course server with no home to move is stopped by the close; its student reads the
    term's sentence (the spawner takes the note while the hub stops the server)."""
    from types import SimpleNamespace

    from hub_ext.homes.stop_notes import take_note

    told = {}

    class Hub:
        async def stop_server(self, user, server="", timeout=120, start_grace=0):
            told[(user, server)] = take_note(tmp_path, user)  # what the spawner's stop() reads
            return True

    close = term.TermClose(homes=SimpleNamespace(hub=Hub(), state_dir=tmp_path), db=None, actor="admin",
                           course="intro-python")

    async def servers(templates):
        return [("ann", ""), ("bob", "extra")]

    close.course_servers_now = servers
    assert await close.stop_remaining({"intro-python-cpu"}) == {("ann", ""), ("bob", "extra")}
    assert told[("ann", "")] == ("The term of intro-python was closed; your files are kept in a backup that an "
                                 "administrator can restore.")
    assert told[("bob", "extra")] == ""  # a named server keeps no note (the spawner reads none)
    assert not list((tmp_path / "stop-notes").glob("*"))  # no note outlives its stop
