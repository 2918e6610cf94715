"""Notices to students (hub_ext/usage/notices.py) on a real SQLite database: one per server and
kind, moved not duplicated, cleared when the reason goes, words in the reader's language."""

from datetime import datetime, timedelta, timezone

import pytest

from hub_ext import i18n
from hub_ext.service.db import open_database
from hub_ext.usage import notices

DUE = datetime(2026, 11, 26, 14, 30, tzinfo=timezone.utc)


@pytest.fixture
def db(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'n.sqlite'}")


def test_one_notice_per_server_and_kind_moves_when_put_again(db):
    notices.put(db, "maya", "", "cull", DUE, template="Intro (CPU)", idle_minutes=30)
    notices.put(db, "maya", "", "cull", DUE + timedelta(minutes=5), template="Intro (CPU)", idle_minutes=30)
    notices.put(db, "maya", "", "quota", DUE, used="19.5", quota="20", course="DL", period="week")
    notices.put(db, "li", "gpu", "cull", DUE, template="DL (GPU)", idle_minutes=60)
    mine = notices.for_user(db, "maya")
    assert [(w.kind, w.due_at) for w in mine] == [("quota", DUE), ("cull", DUE + timedelta(minutes=5))]
    assert [w.user for w in notices.for_user(db, "li")] == ["li"]


def test_clear_removes_only_what_it_names(db):
    notices.put(db, "maya", "", "cull", DUE, template="A", idle_minutes=30)
    notices.put(db, "maya", "", "quota", DUE, used="1", quota="2", course="DL", period="term")
    notices.put(db, "maya", "other", "cull", DUE, template="B", idle_minutes=30)
    assert notices.clear(db, "maya", "", "cull") == 1
    assert sorted((w.server, w.kind) for w in notices.for_user(db, "maya")) == [("", "quota"), ("other", "cull")]
    assert notices.clear(db, "maya") == 2
    assert notices.for_user(db, "maya") == []


def test_unknown_kind_is_refused_and_writes_nothing(db):
    with pytest.raises(ValueError, match="allowed: cull, quota"):
        notices.put(db, "maya", "", "reboot", DUE)
    assert notices.all_notices(db) == []


def test_words_say_why_when_and_that_files_stay_in_the_readers_language(db):
    notices.put(db, "maya", "", "cull", DUE, template="Intro (CPU)", idle_minutes=30)
    (w,) = notices.for_user(db, "maya")
    token = i18n.use("en")
    try:
        text = w.to_dict()["message"]
        assert "idle for 30 minutes" in text and "2026-11-26 14:30 UTC" in text and "files stay" in text
        assert w.to_dict()["due_at"].startswith("2026-11-26T14:30:00")
        i18n.use("zh_CN")
        zh = w.to_dict()["message"]
        assert "空闲 30 分钟" in zh and "文件会保留" in zh and "idle" not in zh
    finally:
        i18n.use("en")
