"""Courseware sync against a real git remote: student edits win, new material arrives,
and a remote that is down never keeps a student out."""

import textwrap

import pytest

pytestmark = pytest.mark.integration


def test_instructor_update_merges_with_student_edits(hub, lab_remote, tmp_path):
    user = "merger"
    hub.spawn(user, {"template": "lab-cpu"})
    # The student edits a course file and creates one of their own named like a file
    # the instructor is about to add.
    assert hub.exec(user, "cd ~/lab && printf 'print(\"mine\")\\n' > hello.py && echo notes > solutions.md")[0] == 0
    hub.stop(user)

    instructor = lab_remote.clone("lab", tmp_path / "instructor")
    instructor.commit_and_push({
        "hello.py": 'print("hello")\nprint("instructor added this line")\n',
        "week3.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n',
        "solutions.md": "official solutions\n",
    }, "Week 3")

    hub.spawn(user)
    try:
        assert hub.exec(user, "cat ~/lab/hello.py")[1] == 'print("mine")\n'  # the student's edit wins
        assert hub.exec(user, "test -f ~/lab/week3.ipynb")[0] == 0  # new material arrives
        code, listing = hub.exec(user, "ls ~/lab")
        # The student's own solutions.md is kept under a new name, never deleted.
        renamed = [f for f in listing.split() if f.startswith("solutions_") and f.endswith(".md")]
        assert renamed and hub.exec(user, f"cat ~/lab/{renamed[0]}")[1] == "notes\n"
        assert hub.exec(user, "cat ~/lab/solutions.md")[1] == "official solutions\n"
    finally:
        hub.stop(user)


def test_remote_down_server_starts_with_a_visible_warning(hub, lab_remote):
    user = "offline"
    hub.spawn(user, {"template": "lab-cpu"})
    assert hub.exec(user, "echo keep > ~/lab/my-work.txt")[0] == 0
    hub.stop(user)
    lab_remote.stop()
    try:
        response, events = hub.spawn_with_progress(user)
        assert response.status_code in (201, 202)
        messages = [e["message"] for e in events]
        assert events[-1].get("ready"), messages
        # The hub's mirror of the course repo serves its last good state and says how old it is.
        assert any(m.startswith("Warning: course materials as of ") for m in messages), messages
        assert hub.exec(user, "cat ~/lab/my-work.txt") == (0, "keep\n")
        note = hub.exec(user, "cat ~/COURSEWARE-NOT-UPDATED.txt")[1]
        assert "could not be updated" in note and "untouched" in note
    finally:
        hub.stop(user)
        lab_remote.start()
    hub.spawn(user)
    try:
        assert hub.exec(user, "test -e ~/COURSEWARE-NOT-UPDATED.txt")[0] != 0  # gone after a good sync
    finally:
        hub.stop(user)


def test_repo_that_moved_still_lets_the_student_in(hub, courses_dir, lab_remote):
    (courses_dir / "moved.yaml").write_text(textwrap.dedent(f"""\
        id: moved
        title: Moved course
        access: everyone
        templates:
          - id: moved-cpu
            title: Moved
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
            courseware:
              repo: {lab_remote.url_from_container('no-longer-here')}
        """))
    try:
        response, events = hub.spawn_with_progress("mover", {"template": "moved-cpu"})
        assert events[-1].get("ready"), events
        assert any("could not be updated" in e["message"] for e in events)
    finally:
        hub.stop("mover")
        (courses_dir / "moved.yaml").unlink()
