"""Words that help (issue 10), without a hub: the GPU refusal's sentences and suggestions,
the admin page's rule for a course's students, the reset-done sentence, error sentences
without internals, and the messages catalog's Chinese."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from tornado import web

from hub_ext import contract, i18n
from hub_ext.catalog.model import ACCESS_ENROLLED, ACCESS_EVERYONE, Course
from hub_ext.hubclient import HubAPIError
from hub_ext.service.admin_pages import is_listed_student
from hub_ext.service.base import error_detail, error_message
from hub_ext.service.pages import reset_words
from spawner.exits import explain_no_gpu, start_refusal

CATALOG = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"


@pytest.fixture
def chinese():
    token = i18n.use("zh_CN")
    yield
    i18n._current.reset(token)


def test_no_gpu_at_all_never_says_try_again_later():
    text = explain_no_gpu("Vision (GPU)", "Vision", 1, total=0, free=0, waiting=0, instead=["Vision (CPU)"])
    assert text == "This server has no GPU, so Vision (GPU) of Vision cannot start here. You can start Vision (CPU) instead."
    text = explain_no_gpu("Vision (GPU)", "Vision", 1, total=0, free=0, waiting=0, instead=[])
    assert text.endswith("Ask your instructor which environment to use instead.") and "later" not in text
    text = explain_no_gpu("Big (4 GPUs)", "Vision", 4, total=2, free=2, waiting=0, instead=[])
    assert text.startswith("Big (4 GPUs) of Vision needs 4 GPUs and this server has only 2, so it cannot start here.")


def test_busy_gpus_say_how_many_wait_with_plurals_right():
    one = explain_no_gpu("G", "Vision", 1, total=1, free=0, waiting=1, instead=[])
    assert one == ("The only GPU for Vision is in use (0 free, 1 needed). 1 other student is waiting too. "
                   "Try again in a few minutes.")
    many = explain_no_gpu("G", "Vision", 1, total=3, free=0, waiting=2, instead=["C"])
    assert many == ("All 3 GPUs for Vision are in use (0 free, 1 needed). 2 other students are waiting too. "
                    "Try again in a few minutes, or start C instead.")


def test_the_refusal_in_chinese_reads_as_chinese(chinese):
    text = explain_no_gpu("视觉（GPU）", "视觉", 1, total=0, free=0, waiting=0, instead=["视觉（CPU）", "B"])
    assert text == "这台服务器没有 GPU，因此无法在这里启动 视觉 的 视觉（GPU）。你可以改为启动 视觉（CPU）、B。"


def test_a_start_refusal_is_shown_by_the_hub_as_its_sentence():
    error = start_refusal(503, "This server has no GPU, 100% sure.")
    assert error.status_code == 503 and error.jupyterhub_message == "This server has no GPU, 100% sure."
    assert "HTTP" not in error.jupyterhub_message


def course(access: str, groups=()) -> Course:
    from hub_ext.catalog.model import Template

    template = Template(id="v-gpu", course="v", title="V", description="", image="i", gpus=1, cpu=1, memory=2**30,
                        shm_size=0, groups=tuple(groups))
    return Course(id="v", title="V", description="", framework=None, access=access, templates=(template,))


@pytest.mark.parametrize("user_groups, homes, access, listed", [
    ([contract.course_group("v")], set(), ACCESS_ENROLLED, True),      # a member, even without a home
    ([contract.staff_group("v")], set(), ACCESS_ENROLLED, True),       # the course's staff
    (["v-advanced"], set(), ACCESS_ENROLLED, True),                    # a group a template names
    ([], {"ann"}, ACCESS_ENROLLED, False),                             # a former student's home: course page
    ([], set(), ACCESS_EVERYONE, False),                               # only refused a template of it
    ([], {"ann"}, ACCESS_EVERYONE, True),                              # used a course open to everyone
    (["course-other"], set(), ACCESS_ENROLLED, False),                 # another course's student
])
def test_who_the_admin_page_lists_as_a_courses_student(user_groups, homes, access, listed):
    user = {"name": "ann", "groups": user_groups}
    assert is_listed_student(user, course(access, groups=["v-advanced"]), homes) is listed


def test_reset_done_words_name_the_time_and_how_to_get_files_back_not_the_volume():
    volume = "goldenhub-home-maya--intro-2Dpython-backup-20261126T125311Z"
    text = reset_words({"result": "ok", "backup": volume, "backup_created": "2026-11-26T12:53:11Z",
                        "message": f"home moved to backup {volume}"})
    assert text == ("Your environment was reset and your next start is fresh. Your old files are kept in a backup "
                    "made at 2026-11-26 12:53 UTC; it is listed under Backups on your environments page, and your "
                    "instructor can restore it for you.")
    assert "goldenhub" not in reset_words({"result": "failed", "message": f"Could not move {volume}"})
    assert reset_words({"result": "ok", "backup": None}).startswith("Your environment was reset. There were no files")


def test_hub_trouble_is_a_sentence_and_its_detail_is_kept_apart():
    down = HubAPIError(502, "The hub did not answer: [Errno 111] Connection refused", reached=False)
    message = error_message(down, 502, "Bad Gateway")
    assert message.startswith("The hub did not answer, so this was not done; try again in a minute.")
    assert "Errno" not in message and "502" not in message
    assert "Connection refused" in error_detail(down)
    assert error_detail(web.HTTPError(400, "x")) == ""
    assert error_message(HubAPIError(503, "error"), 503, "Service Unavailable").startswith("The hub did not answer")


def test_an_error_without_its_own_words_gets_a_sentence_not_a_status_name():
    for status in (400, 403, 404, 405):
        message = error_message(web.HTTPError(status), status, "Not Found")
        assert message.endswith(".") and len(message.split()) > 5 and str(status) not in message
    assert "service log" in error_message(RuntimeError("boom /srv/x"), 500, "Internal Server Error")


def test_every_message_has_chinese_with_the_same_placeholders():
    with CATALOG.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    assert catalog.plural_forms == "nplurals=1; plural=0;"
    placeholder = re.compile(r"%\((\w+)\)[sd]")
    count = 0
    for m in catalog:
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        text = m.string if isinstance(m.string, str) else m.string[0]
        assert text and not m.fuzzy, m.id
        assert re.search(r"[\u4e00-\u9fff]", text) or text == ids[0], (m.id, text)  # real Chinese
        wanted = set().union(*(placeholder.findall(i) for i in ids))
        assert set(placeholder.findall(text)) <= wanted and (len(ids) > 1 or set(placeholder.findall(text)) == wanted), m.id
        text % {name: 1 for name in wanted | {"num"}}  # formats without error
        count += 1
    assert count > 100
