"""What the zh-CN page walk found in English, fixed in the product (issue 10): sentences
written by one person and read by another are told in the reader's language; the student who
resets their own environment reads "You reset..."; roster problems and plan lines, template
field problems and audit details of resets come in Chinese."""

from __future__ import annotations

import contextvars
from datetime import datetime, timezone

import pytest

from hub_ext import i18n
from hub_ext.accounts import roster
from hub_ext.catalog import rules
from hub_ext.catalog.model import _Checker as Checker
from hub_ext.homes import markers, stop_notes
from hub_ext.i18n.deferred import deferred, told
from hub_ext.i18n.text import LocalText
from hub_ext.service.db import AuditEntry
from spawner.exits import reset_reason
from tests.walk import check_text


@pytest.fixture(autouse=True)
def english_default():
    i18n.set_default("en")
    yield
    i18n.set_default("en")


def served(lang, function, *args, **kw):
    """function(...) in `lang`, in a context of its own (as one request is)."""
    def run():
        i18n.use(lang)
        return function(*args, **kw)
    return contextvars.copy_context().run(run)


def chinese_page_problems(text: str) -> list:
    return [p for p in check_text("p", "zh-CN", text) if p.rule in ("msgid", "english", "leak")]


def test_a_stop_reason_written_in_english_is_read_in_chinese():
    course = LocalText("Intro to Python", {"zh_CN": "Python 入门"})
    reason = served("en", reset_reason, course, False)  # the hub's stop, asked by the service in English
    zh = served("zh_CN", told, reason)
    assert zh == "管理员重置了你的 Python 入门 环境；你之前的文件保存在备份中。请再次启动。"
    assert served("en", told, reason).startswith("An administrator reset your Intro to Python environment")
    assert chinese_page_problems(zh) == []
    admin_stop = stop_notes.admin_stop_reason(datetime(2026, 11, 26, 10, 7, tzinfo=timezone.utc))
    assert served("zh_CN", told, admin_stop).startswith("管理员在 10:07 UTC 停止了你的服务器")


def test_the_student_who_reset_their_own_environment_reads_you_reset(tmp_path):
    with markers.resetting(tmp_path, "gh-home-ann", by_owner=True):
        assert markers.reset_in_progress(tmp_path, "gh-home-ann")
        by_owner = markers.reset_by_owner(tmp_path, "gh-home-ann")
    assert by_owner
    with markers.resetting(tmp_path, "gh-home-ann"):
        assert not markers.reset_by_owner(tmp_path, "gh-home-ann")
    assert not markers.reset_by_owner(tmp_path, "gh-home-ann")  # no reset: nobody
    reason = reset_reason("lab", False, by_owner)
    assert served("en", told, reason) == ("You reset your lab environment; your previous files are kept in a backup. "
                                          "Start it again.")
    assert served("zh_CN", told, reason).startswith("你重置了你的 lab 环境")


def test_plain_and_broken_texts_are_shown_as_they_are_or_not_at_all():
    assert told("An old reason, written as a sentence.") == "An old reason, written as a sentence."
    assert told("goldenhub-sentence:{not json") == ""
    assert told(None) == ""


def test_audit_details_of_resets_are_read_in_the_readers_language():
    entry = AuditEntry(at=datetime(2026, 11, 26, tzinfo=timezone.utc), actor="prof", action="reset", target_user="ann", course="lab", result="ok",
                       detail=deferred("home moved to backup %(volume)s", volume="gh-backup-ann-lab-1"))
    assert served("en", lambda: entry.to_dict()["detail"]) == "home moved to backup gh-backup-ann-lab-1"
    assert served("zh_CN", lambda: entry.detail_text) == "主目录已移到备份 gh-backup-ann-lab-1"
    old = AuditEntry(actor="prof", action="reset", target_user="ann", course="lab", result="ok",
                     detail="home moved to backup gh-old")  # a row from before: shown as it is
    assert served("zh_CN", lambda: old.detail_text) == "home moved to backup gh-old"


def test_roster_problems_and_the_plan_line_are_chinese():
    bad = "username,role\nBad Name,professor\nann,student\nann,ta\n".encode()
    with pytest.raises(roster.RosterError) as e:
        served("zh_CN", roster.parse_roster, bad)
    text = "\n".join(e.value.problems)
    assert "第 2 行：用户名 'Bad Name' 不合规" in text and "角色 'professor' 不是 student、ta、instructor 之一" in text
    assert text.index("第 2 行") < text.index("第 3 行") < text.index("第 4 行")  # in line order
    assert chinese_page_problems(text) == [], text
    with pytest.raises(roster.RosterError) as e:
        roster.parse_roster(bad)  # English stays the English it was
    assert e.value.problems[0].startswith("line 2: username 'Bad Name' is not allowed; a username is 1 to 64")
    plan = roster.make_plan("lab", roster.parse_roster(b"username\nann\n"), {"ann"}, set(), set(), {})
    line = served("zh_CN", roster.plan_summary, plan, applied=False)
    assert line == "lab 的试运行：将选课 1 人，0 项角色更改、0 项资料更改，退课 0 人，新建账户 0 个；0 人不变。没有做任何更改。"
    assert chinese_page_problems(line) == []


def test_template_field_problems_are_chinese_and_never_say_none():
    def problems():
        ck = Checker("editor")
        ck.check("title", None, rules.title)
        ck.check("memory", "lots", rules.memory_size)
        ck.mapping({}, "", {"image": True})
        return ck.problems

    zh = "\n".join(served("zh_CN", problems))
    assert "收到 空值；允许：最多 100 个字符的非空文本" in zh and "image: 缺少（必填）" in zh
    assert chinese_page_problems(zh) == [], zh
    en = "\n".join(served("en", problems))
    assert "title: got nothing; allowed: non-empty text of at most 100 characters" in en and "None" not in en
    assert "memory: got 'lots'; allowed: a size from 128M to 4T" in en
