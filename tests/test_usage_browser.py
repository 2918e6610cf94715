"""The usage page in a real browser (Debian's Chromium via Playwright): an admin goes from the
admin page to deep-learning's GPU use, the chart's bars for days with use are drawn with a
size above zero (and the empty days' are not), the CSV downloads as a file with the
students' rows, and a grant goes through the in-page confirmation and shows in the table."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from hub_ext.hubconfig import Settings
from hub_ext.service.db import UsageSession, open_database, utcnow
from tests.helpers import ARTIFACTS
from tests.helpers import browser_login as login

pytestmark = pytest.mark.browser

COURSE = "deep-learning"
CAT = "u5b-cat"


@pytest.fixture(scope="module")
def cat_used_gpus(hub):
    """u5b-cat used two GPUs for 2 hours, ending an hour ago."""
    hub.enrol(CAT, COURSE)
    db = open_database(Settings.default_db_url(hub.state_dir))
    now = utcnow()
    with db() as s:
        s.add(UsageSession(container_id="u5b-c1", username=CAT, course=COURSE, template="dl-gpu",
                           gpus="GPU-test-0,GPU-test-1", started_at=now - timedelta(hours=3),
                           last_seen=now - timedelta(hours=1), ended_at=now - timedelta(hours=1), end_reason="stop"))
        s.commit()


def test_the_chart_renders_the_csv_downloads_and_a_grant_is_confirmed(hub, browser, cat_used_gpus):
    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin")
        page.click(f"a.course-usage[href$='admin/courses/{COURSE}/usage']")
        page.wait_for_selector("#usage-chart svg")
        chart = page.locator("#usage-chart svg")
        assert chart.get_attribute("role") == "img" and "GPU-hours" in chart.get_attribute("aria-label")
        box = chart.bounding_box()
        assert box["width"] > 0 and box["height"] > 0
        drawn = {}
        for bar in page.locator("#usage-chart rect.bar").all():
            size = bar.bounding_box()
            drawn[bar.get_attribute("data-day")] = (float(bar.get_attribute("data-hours")), size)
        used = {d: s for d, (h, s) in drawn.items() if h > 0}
        assert used and all(s["height"] > 0 and s["width"] > 0 for s in used.values())
        assert all(s is None or s["height"] == 0 for d, (h, s) in drawn.items() if h == 0)
        assert "4.0" in page.inner_text(f"#usage tr[data-user='{CAT}'] td.used")
        page.screenshot(path=str(ARTIFACTS / "usage-page.png"), full_page=True)

        with page.expect_download() as download:
            page.click("#csv-students")
        assert download.value.suggested_filename.startswith(f"usage-{COURSE}-students-")
        rows = {r["username"]: r for r in csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read()))}
        assert rows[CAT]["used_hours"] == "4.0"

        page.fill("#grant-user", CAT)
        page.fill("#grant-hours", "2.5")
        page.fill("#grant-reason", "thesis deadline")
        page.click("#grant-form button[type=submit]")
        dialog = page.locator("#confirm-dialog")
        dialog.wait_for(state="visible")
        assert "cannot be taken back" in dialog.inner_text()
        page.click("#confirm-yes")
        page.wait_for_selector("#goldenhub-flash .alert-success")
        assert "2.5 extra GPU-hours" in page.inner_text("#goldenhub-flash")
        assert page.inner_text(f"#usage tr[data-user='{CAT}'] td.granted").strip() == "2.5"
    finally:
        page.context.close()
