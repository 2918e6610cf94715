"""`goldenhub servers|reset|backups` against a real hub, as an admin at a terminal uses them:
run as a subprocess with a token in the environment, output read as the admin reads it."""

from __future__ import annotations

import pytest

from tests.helpers import goldenhub, user_token

pytestmark = pytest.mark.integration

STUDENT = "cli-dora"


def cli(hub, *args: str, token: str | None, stdin: str = ""):
    """`goldenhub ARGS` pointed at this hub, with `token` as the only credential."""
    return goldenhub(*args, env={"GOLDENHUB_HUB_URL": hub.url, "GOLDENHUB_PREFIX": hub.prefix,
                                 "JUPYTERHUB_API_TOKEN": token}, stdin=stdin)


@pytest.fixture(scope="module")
def admin(hub) -> str:
    return user_token(hub, "admin", note="goldenhub cli test")


def line_of(output: str, first: str) -> list[str]:
    found = [line.split() for line in output.splitlines() if line.split()[:1] == [first]]
    assert found, f"no line for {first} in:\n{output}"
    return found[0]


def test_list_reset_restore_and_delete_from_the_terminal(hub, admin):
    hub.spawn(STUDENT, {"template": "lab-cpu"})
    assert hub.exec(STUDENT, "echo 'my essay' > ~/essay.txt")[0] == 0

    listed = cli(hub, "servers", "list", token=admin)
    assert listed.returncode == 0, listed.stderr
    assert line_of(listed.stdout, STUDENT)[:5] == [STUDENT, "running", "lab-cpu", "lab", "-"]
    other_course = cli(hub, "servers", "list", "--course", "intro-python", token=admin)
    assert STUDENT not in other_course.stdout
    logs = cli(hub, "servers", "logs", STUDENT, "--tail", "5", token=None)
    assert logs.returncode == 0 and 0 < len(logs.stdout.splitlines()) <= 5, logs.stderr

    reset = cli(hub, "reset", STUDENT, "--course", "lab", token=admin)
    assert reset.returncode == 0, reset.stderr
    assert f"{STUDENT}: ok: home moved to backup" in reset.stdout
    assert hub.server(STUDENT) is None

    backups = cli(hub, "backups", "list", "--user", STUDENT, token=admin)
    assert backups.returncode == 0, backups.stderr
    backup = backups.stdout.splitlines()[1].split()[0]
    assert backup in reset.stdout and line_of(backups.stdout, backup)[1:3] == [STUDENT, "lab"]

    restored = cli(hub, "backups", "restore", backup, token=admin)
    assert restored.returncode == 0 and f"restored {backup}" in restored.stdout, restored.stdout + restored.stderr
    hub.spawn(STUDENT, {"template": "lab-cpu"})
    try:
        assert hub.exec(STUDENT, "cat ~/essay.txt") == (0, "my essay\n")
    finally:
        hub.stop(STUDENT)

    unconfirmed = cli(hub, "backups", "delete", backup, token=admin, stdin="")
    assert unconfirmed.returncode == 1 and "Not confirmed" in unconfirmed.stderr
    assert backup in cli(hub, "backups", "list", "--user", STUDENT, token=admin).stdout
    deleted = cli(hub, "backups", "delete", backup, "--yes", token=admin)
    assert deleted.returncode == 0 and deleted.stdout == f"ok: deleted {backup}\n", deleted.stderr
    assert backup not in cli(hub, "backups", "list", "--user", STUDENT, token=admin).stdout


def test_a_course_wide_reset_needs_the_course_id_typed(hub, admin):
    refused = cli(hub, "reset", "--course", "lab", "--all", token=admin, stdin="intro-python\n")
    assert refused.returncode == 1
    assert "Type lab to confirm" in refused.stderr and "(got 'intro-python'); nothing changed" in refused.stderr


def test_a_student_gets_a_clear_403(hub):
    student = user_token(hub, "cli-eve", note="goldenhub cli test")
    others = cli(hub, "backups", "list", "--user", STUDENT, token=student)
    assert others.returncode == 1 and others.stdout == ""
    assert "needs the scope custom:goldenhub:reset (HTTP 403" in others.stderr
    servers = cli(hub, "servers", "list", token=student)
    assert servers.returncode == 1 and "(HTTP 403 from GET /hub/api/users" in servers.stderr, servers.stderr


def test_a_missing_token_says_how_to_make_one(hub):
    result = cli(hub, "servers", "list", token=None)
    assert result.returncode == 1
    assert f"make one at {hub.url}/hub/token" in result.stderr and "JUPYTERHUB_API_TOKEN" in result.stderr
