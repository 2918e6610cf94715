"""The usage chart (hub_ext.usage.chart), pure: GPU-hours by day from recorded sessions, and an
SVG that parses as XML, has one bar per day whose height follows its hours, readable labels,
a title and description for screen readers, and says "No GPU use yet" when nothing was used.
Also the CSV cells of the usage export (hub_ext.service.usage_pages): no formula survives."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone

from hub_ext import i18n
from hub_ext.service.usage_pages import csv_text
from hub_ext.usage.chart import daily_hours, make_svg
from hub_ext.usage.ledger import Session

SVG = "{http://www.w3.org/2000/svg}"
UTC = timezone.utc


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def session(cid: str, start: datetime, end: datetime | None, gpus=("0",)) -> Session:
    return Session(cid, "ann", "dl", "dl-gpu", tuple(gpus), start, end or start, end)


def bars(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(f"{SVG}rect[@class='bar']")


def test_hours_by_day_split_at_midnight_per_gpu_and_open_sessions_count_to_now():
    sessions = [session("a", at(2, 22), at(3, 2), gpus=("0", "1")),  # 2 h × 2 GPUs on the 2nd, 2 h × 2 on the 3rd
                session("b", at(4, 10), None)]  # open: counts until now
    days = daily_hours(sessions, date(2026, 11, 1), date(2026, 11, 4), now=at(4, 11, 30))
    assert days == [(date(2026, 11, 1), 0.0), (date(2026, 11, 2), 4.0), (date(2026, 11, 3), 4.0),
                    (date(2026, 11, 4), 1.5)]


def test_svg_parses_and_its_bars_follow_the_data():
    days = [(date(2026, 11, 1), 0.0), (date(2026, 11, 2), 4.0), (date(2026, 11, 3), 2.0), (date(2026, 11, 4), 0.25)]
    svg = make_svg(days, "GPU-hours by day in Deep learning")
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and "GPU-hours by day in Deep learning" in root.get("aria-label")
    assert root.find(f"{SVG}title").text == "GPU-hours by day in Deep learning"
    assert "6.2 GPU-hours in 4 days" in root.find(f"{SVG}desc").text
    found = bars(svg)
    assert [b.get("data-day") for b in found] == [d.isoformat() for d, _h in days]
    assert [b.get("data-hours") for b in found] == ["0.0", "4.0", "2.0", "0.2"]
    heights = [float(b.get("height")) for b in found]
    assert heights[0] == 0 and heights[1] == 2 * heights[2] and 0 < heights[3] < heights[2]
    assert [b.find(f"{SVG}title").text for b in found][1] == "2026-11-02: 4.0 GPU-hours"
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "day-label"]
    assert labels == ["11-01", "11-02", "11-03", "11-04"]
    assert "currentColor" in svg and "<script" not in svg


def test_long_ranges_label_every_seventh_day():
    days = [(date(2026, 10, 1 + i), 1.0) for i in range(30)]
    root = ET.fromstring(make_svg(days, "t"))
    assert len(bars(make_svg(days, "t"))) == 30
    assert len([t for t in root.iter(f"{SVG}text") if t.get("class") == "day-label"]) == 5


def test_no_use_says_so_and_has_no_bars():
    svg = make_svg([(date(2026, 11, 1), 0.0), (date(2026, 11, 2), 0.0)], "t")
    root = ET.fromstring(svg)
    assert bars(svg) == []
    assert [t.text for t in root.iter(f"{SVG}text")] == ["No GPU use yet"]
    assert root.find(f"{SVG}desc").text == "No GPU use yet"


def test_titles_are_escaped():
    svg = make_svg([(date(2026, 11, 1), 1.0)], 'A <b>"&" course')
    assert ET.fromstring(svg).find(f"{SVG}title").text == 'A <b>"&" course'


def test_chart_words_in_chinese():
    token = i18n.use("zh_CN")
    try:
        svg = make_svg([], "t")
    finally:
        i18n._current.reset(token)
    assert "No GPU use yet" not in svg and ET.fromstring(svg).find(f"{SVG}desc").text


def test_csv_cells_that_start_a_formula_are_defused():
    text = csv_text(["username", "reason"], [["=cmd|' /C calc'!A0", "+1"], ["-2", "@SUM(A1)"], ["ann", "ok"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["username", "reason"], ["'=cmd|' /C calc'!A0", "'+1"], ["'-2", "'@SUM(A1)"], ["ann", "ok"]]
