"""Destructive actions ask first, in Chromium (Debian's, via Playwright): Stop, Reset,
Restore and Delete backup on the admin page open a dialog saying what will happen, to whom
and how to undo it; Cancel changes nothing (the server still runs, the home and the backup
are still there); Confirm acts. The student whose server an administrator stopped or reset
reads why on their next load of the goldenhub page and the hub's home page, until their
next start."""

import json
import os
from datetime import datetime, timedelta, timezone

import docker
import pytest

from hub_ext import contract
from hub_ext.homes import stop_notes
from hub_ext.i18n.deferred import told
from hub_ext.service import templating
from tests.helpers import browser_login as login
from tests.helpers import volume_exists, volume_files

SERVICE = "/services/goldenhub"


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def ask(page, row, button: str):
    """Click a row's button; the confirmation dialog that opens (no request is sent yet)."""
    row.locator(f"button:has-text('{button}')").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    return dialog


def cancel(page, dialog, url: str) -> None:
    dialog.locator("#confirm-no").click()
    expect(dialog).to_be_hidden()
    assert page.url == url and page.locator("#message").count() == 0  # nothing was sent


def confirm(page, dialog) -> str:
    with page.expect_navigation():
        dialog.locator("#confirm-yes").click()
    return page.inner_text("#message")


@pytest.mark.browser
def test_admin_stop_asks_first_and_the_student_is_told_why(hub, browser):
    user = "stop-told"
    hub.spawn(user, {"template": "lab-cpu"})
    admin = login(browser, hub, "admin", hub.admin_password())
    try:
        url = f"{hub.url}{SERVICE}/admin"
        admin.goto(url)
        row = admin.locator(f"#course-lab tr.student[data-user='{user}']")
        dialog = ask(admin, row, "Stop")
        assert dialog.locator("#confirm-text").inner_text() == (
            f"{user}'s server will stop now; their files stay in their home. "
            "They are told why and can start it again.")
        cancel(admin, dialog, url)
        assert hub.server(user)["ready"]  # Cancel stopped nothing

        dialog = ask(admin, row, "Stop")
        assert f"{user}'s server was stopped" in confirm(admin, dialog)
        assert hub.server(user) is None
    finally:
        admin.context.close()

    student = login(browser, hub, user, hub.student_password())
    try:
        student.goto(f"{hub.url}{SERVICE}/")
        told = student.locator("#stop-reason")
        expect(told).to_have_count(1)
        reason = told.inner_text()
        assert reason.startswith("An administrator stopped your server at ")
        assert reason.endswith(" UTC; your files are kept. Start it again when you need it.")
        assert student.inner_text("body").count("An administrator stopped your server") == 1
        student.goto(f"{hub.url}/hub/home")
        expect(student.locator("#goldenhub-stop-reason")).to_have_text(reason)
        assert student.inner_text("body").count("An administrator stopped your server") == 1
    finally:
        student.context.close()

    hub.spawn(user, {"template": "lab-cpu"})  # the next start has told it: it is gone
    hub.stop(user)  # a stop by the student (the hub API, no note): nothing to tell
    student = login(browser, hub, user, hub.student_password())
    try:
        student.goto(f"{hub.url}{SERVICE}/")
        expect(student.locator("h1")).to_have_text("My environments")
        assert student.locator("#stop-reason").count() == 0
        student.goto(f"{hub.url}/hub/home")
        assert student.locator("#goldenhub-stop-reason").count() == 0
    finally:
        student.context.close()


@pytest.mark.browser
def test_reset_restore_and_delete_ask_first_and_cancel_changes_nothing(hub, browser):
    user = "reset-asked"
    home = contract.home_volume_name(hub.prefix, user, "lab")
    hub.spawn(user, {"template": "lab-cpu"})
    hub.exec(user, "echo 'week 3 notes' > ~/notes.txt")
    client = docker.from_env()
    admin = login(browser, hub, "admin", hub.admin_password())
    url = f"{hub.url}{SERVICE}/admin"
    try:
        admin.goto(url)
        row = admin.locator(f"#course-lab tr.student[data-user='{user}']")
        dialog = ask(admin, row, "Reset")
        assert dialog.locator("#confirm-text").inner_text() == (
            f"{user}'s lab home goes to a dated backup and their server stops; their next start is fresh. "
            "You can restore the old home from Backups.")
        cancel(admin, dialog, url)
        assert hub.server(user)["ready"]
        assert hub.exec(user, "cat ~/notes.txt") == (0, "week 3 notes\n")

        dialog = ask(admin, row, "Reset")
        assert "1 of 1 home of lab was reset" in confirm(admin, dialog)
        assert hub.server(user) is None and not volume_exists(client, home)
    finally:
        admin.context.close()

    student = login(browser, hub, user, hub.student_password())
    try:
        student.goto(f"{hub.url}{SERVICE}/")
        expect(student.locator("#stop-reason")).to_have_count(1)
        assert "An administrator reset your" in student.inner_text("#stop-reason")
        assert "backup" in student.inner_text("#stop-reason")
    finally:
        student.context.close()

    admin = login(browser, hub, "admin", hub.admin_password())
    try:
        admin.goto(url)
        backup_row = admin.locator("tr.backup", has=admin.locator(f"td:text-is('{user}')"))
        expect(backup_row).to_have_count(1)
        backup = backup_row.get_attribute("data-volume")
        assert "./notes.txt" in volume_files(backup)

        dialog = ask(admin, backup_row, "Restore")
        assert dialog.locator("#confirm-text").inner_text() == (
            f"{user}'s lab home will be replaced by the backup {backup} and their server stops. "
            "The home it replaces goes to a new backup first, so you can restore that one to undo this.")
        cancel(admin, dialog, url)
        assert not volume_exists(client, home)  # not restored

        dialog = ask(admin, backup_row, "Restore")
        assert f"restored {backup}" in confirm(admin, dialog)
        assert "./notes.txt" in volume_files(home)

        admin.goto(url)
        backup_row = admin.locator(f"tr.backup[data-volume='{backup}']")
        backup_row.locator("input[name=confirm]").fill(backup)
        dialog = ask(admin, backup_row, "Delete")
        assert dialog.locator("#confirm-text").inner_text() == (
            f"The backup {backup} of {user} (lab) will be deleted. This cannot be undone.")
        cancel(admin, dialog, url)
        assert volume_exists(client, backup)

        dialog = ask(admin, backup_row, "Delete")
        confirm(admin, dialog)
        assert not volume_exists(client, backup)
        assert admin.locator(f"tr.backup[data-volume='{backup}']").count() == 0
    finally:
        admin.context.close()


@pytest.mark.browser
def test_cancel_on_the_reset_all_page_resets_no_one(hub, browser):
    user = "reset-all-cancelled"
    hub.spawn(user, {"template": "lab-cpu"})
    admin = login(browser, hub, "admin", hub.admin_password())
    try:
        url = f"{hub.url}{SERVICE}/admin/reset-all?course=lab"
        admin.goto(url)
        admin.fill("input[name=confirm]", "lab")
        admin.click("button:has-text('students')")
        dialog = admin.locator("#confirm-dialog")
        expect(dialog).to_be_visible()
        assert "You can restore" in dialog.inner_text() and "lab home" in dialog.inner_text()
        cancel(admin, dialog, url)
        assert hub.server(user)["ready"]  # nobody was reset
    finally:
        admin.context.close()
        hub.stop(user)

# --- the parts without a hub: the note handed from the service to the spawner, the sentences -----


def test_a_note_is_told_once_to_its_own_user_only(tmp_path):
    stop_notes.write_note(tmp_path, "lin", "An administrator stopped your server at 10:05 UTC.")
    assert stop_notes.take_note(tmp_path, "maya") == ""  # another student's stop: not theirs
    assert stop_notes.take_note(tmp_path, "lin") == "An administrator stopped your server at 10:05 UTC."
    assert stop_notes.take_note(tmp_path, "lin") == ""  # taken: told once


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"user": "lin"}', '{"user": "lin", "reason": 5, "created": "2026-01-01T00:00:00+00:00"}',
    "x" * (stop_notes.MAX_NOTE + 1),
])
def test_a_broken_note_tells_nothing_and_is_removed(tmp_path, content):
    path = stop_notes.note_path(tmp_path, "lin")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert stop_notes.take_note(tmp_path, "lin") == ""
    assert not path.exists()


def test_a_stale_note_left_by_a_crash_is_not_told_for_a_later_stop(tmp_path):
    path = stop_notes.write_note(tmp_path, "lin", "old news")
    old = datetime.now(timezone.utc) - timedelta(seconds=stop_notes.NOTE_TTL + 60)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "created": old.isoformat()}))
    assert stop_notes.take_note(tmp_path, "lin") == ""


def test_a_user_name_never_reaches_a_path(tmp_path):
    path = stop_notes.note_path(tmp_path, "../../etc/passwd")
    assert path.parent == tmp_path / "stop-notes" and "/" not in path.name and ".." not in path.name
    assert os.path.commonpath([path, tmp_path]) == str(tmp_path)


def test_the_admin_stop_reason_names_the_time_in_utc():
    at = datetime(2026, 11, 26, 18, 7, tzinfo=timezone(timedelta(hours=8)))
    assert told(stop_notes.admin_stop_reason(at)) == (  # kept deferred: told in the reader's language
        "An administrator stopped your server at 10:07 UTC; your files are kept. Start it again when you need it.")


def test_the_confirmation_sentence_is_escaped_text_in_an_attribute():
    templates = templating.make_environment()  # the service's pages, in the hub's page
    hostile = 'x"><script>alert(1)</script>'
    values = templating.page_values(username="admin", scopes=(), service_prefix="/p/", xsrf_token="", nonce="n")
    html = templates.get_template("admin.html").render(
        values, courses={"lab": type("C", (), {"title": "Lab", "templates": []})()},
        rows={"lab": [{"name": hostile, "status": "running", "template": "", "gpus": "", "image": "",
                       "last_activity": ""}]},
        can={"reset": True}, backups=[], manageable=set(), audit=None, catalog=None, xsrf_form_html="",
        marks={})
    assert "<script>alert(1)" not in html
    assert "data-confirm=\"x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;'s server will stop now" in html
