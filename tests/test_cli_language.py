"""The `goldenhub` command speaks the platform's language, else the terminal's: the real
command line (a subprocess, as an admin runs it) with LANG=zh_CN.UTF-8 or
GOLDENHUB_LANGUAGE=zh_CN prints Chinese, with LANG=C English; the setting (environment or
state/goldenhub.yaml) wins over the locale; exit statuses are the same in both languages.
Commands that need no hub: `--help`, refusals of a bad command line, `courses validate`,
`tls self-signed`; `status` and `courses status` (marked integration: they ask Docker)."""

from __future__ import annotations

import pytest

from hub_ext.cli.language import cli_language, locale_language, pad, text_width
from tests.helpers import goldenhub

NO_LANGUAGE = {"GOLDENHUB_LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANGUAGE": None}


@pytest.fixture
def state(tmp_path):
    """A state directory of its own, so that no settings file of the checkout decides."""
    folder = tmp_path / "state"
    folder.mkdir()
    return folder


def run(state, *args, **env):
    return goldenhub(*args, env={**NO_LANGUAGE, "GOLDENHUB_STATE_DIR": str(state), **env})


CHINESE = {"LANG": "zh_CN.UTF-8"}
ENGLISH = {"LANG": "C"}


def test_help_in_chinese_and_english(state):
    zh = run(state, "--help", **CHINESE)
    assert zh.returncode == 0
    for words in ("用法：goldenhub", "运行和管理 goldenhub 教学平台。", "显示此帮助信息并退出",
                  "启动平台（Hub、代理、示例课件服务器）", "重置一个学生的环境，或整个课程的环境"):
        assert words in zh.stdout
    assert "show this help message" not in zh.stdout and "start the platform" not in zh.stdout
    en = run(state, "--help", **ENGLISH)
    assert en.returncode == 0
    assert "usage: goldenhub" in en.stdout and "Run and manage a goldenhub teaching platform." in en.stdout
    assert "用法" not in en.stdout


def test_a_refused_command_line_in_chinese_and_english(state):
    """argparse's own refusal and goldenhub's, in the language; the exit statuses do not change."""
    zh = run(state, "reset", **CHINESE)
    assert zh.returncode == 2 and "缺少以下必需参数：--course" in zh.stderr and "错误" in zh.stderr
    en = run(state, "reset", **ENGLISH)
    assert en.returncode == 2 and "the following arguments are required: --course" in en.stderr
    zh = run(state, "reset", "--course", "intro-python", **CHINESE)  # neither a USER nor --all
    assert zh.returncode == 1 and "请指定一个 USER，或使用 --all 重置该课程的所有学生" in zh.stderr
    en = run(state, "reset", "--course", "intro-python", **ENGLISH)
    assert en.returncode == 1 and "Name one USER, or pass --all for every student of the course" in en.stderr


def test_a_hostile_host_name_is_refused_in_chinese_and_nothing_is_written(state):
    zh = run(state, "tls", "self-signed", "--host", "evil host;rm -rf /" + "x" * 5000, **CHINESE)
    assert zh.returncode == 2 and "不是主机名或 IP 地址。没有写入任何内容。" in zh.stderr
    assert len(zh.stderr) < 400  # the name is cut, not echoed in full
    assert not (state / "tls").exists()


def test_courses_validate_counts_in_each_language(state):
    zh = run(state, "courses", "validate", **CHINESE)
    assert zh.returncode == 0 and zh.stdout.startswith("正常：") and "门课程" in zh.stdout and "个模板" in zh.stdout
    en = run(state, "courses", "validate", **ENGLISH)
    assert en.returncode == 0 and en.stdout.startswith("OK: ") and " courses, " in en.stdout


def test_the_platform_setting_wins_over_the_locale(state):
    """GOLDENHUB_LANGUAGE, then `language:` in the settings file, decide before LANG does."""
    en = run(state, "--help", GOLDENHUB_LANGUAGE="en", LANG="zh_CN.UTF-8")
    assert "usage: goldenhub" in en.stdout and "用法" not in en.stdout
    zh = run(state, "--help", GOLDENHUB_LANGUAGE="zh_CN", LANG="C")
    assert "用法：goldenhub" in zh.stdout
    (state / "goldenhub.yaml").write_text("auth: demo\nlanguage: zh_CN\n", encoding="utf-8")
    zh = run(state, "--help", LANG="en_US.UTF-8")
    assert "用法：goldenhub" in zh.stdout
    en = run(state, "--help", GOLDENHUB_LANGUAGE="en", LANG="en_US.UTF-8")  # the environment before the file
    assert "usage: goldenhub" in en.stdout


def test_lc_all_wins_over_lang(state):
    en = run(state, "--help", LC_ALL="C", LANG="zh_CN.UTF-8")
    assert "usage: goldenhub" in en.stdout
    zh = run(state, "--help", LC_MESSAGES="zh_CN.UTF-8", LANG="C")
    assert "用法：goldenhub" in zh.stdout


@pytest.mark.parametrize("env, expected", [
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"), ({"LANG": "zh_CN.GB18030@stroke"}, "zh_CN"), ({"LANG": "zh_SG"}, "zh_CN"),
    ({"LANG": "en_US.UTF-8"}, "en"), ({"LANG": "C"}, None), ({"LANG": "POSIX"}, None), ({"LANG": "fr_FR"}, None),
    ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, None), ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LC_MESSAGES": "zh_CN", "LANG": "en_US"}, "zh_CN"), ({}, None), ({"LANG": "zh_CN" + "x" * 10_000}, None),
])
def test_locale_language(env, expected):
    assert locale_language(env) == expected


def test_cli_language_order(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path))
    assert cli_language({"LANG": "zh_CN.UTF-8"}) == "zh_CN"
    assert cli_language({"LANG": "C"}) == "en"
    assert cli_language({"GOLDENHUB_LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}) == "en"
    assert cli_language({"GOLDENHUB_LANGUAGE": "zh-CN", "LANG": "C"}) == "zh_CN"
    (tmp_path / "goldenhub.yaml").write_text("language: zh_CN\n")
    assert cli_language({"LANG": "C"}) == "zh_CN"
    (tmp_path / "goldenhub.yaml").write_text("[not: a mapping")  # unreadable: the locale decides
    assert cli_language({"LANG": "C"}) == "en"
    (tmp_path / "goldenhub.yaml").write_text("- a list\n")
    assert cli_language({"LANG": "zh_CN.UTF-8"}) == "zh_CN"


def test_columns_line_up_with_chinese():
    assert text_width("课程") == 4 and text_width("course") == 6
    assert pad("课程", 6) == "课程  " and text_width(pad("模板", 10)) == 10 and pad("toolong", 3) == "toolong"


@pytest.mark.integration
def test_status_in_chinese_and_english(state):
    """No hub: the same exit status (3, as systemctl's "not running") in both languages."""
    zh = run(state, "status", **CHINESE, GOLDENHUB_GIT_PORT="1")
    assert zh.returncode == 3
    assert "Hub：" in zh.stdout and "未运行（`goldenhub up --detach` 启动它）" in zh.stdout
    assert "状态目录：" in zh.stdout and str(state) in zh.stdout and "not running" not in zh.stdout
    en = run(state, "status", **ENGLISH, GOLDENHUB_GIT_PORT="1")
    assert en.returncode == 3 and "hub:                not running" in en.stdout


@pytest.mark.integration
def test_courses_status_table_in_chinese(state):
    zh = run(state, "courses", "status", **CHINESE)
    assert zh.returncode in (0, 1)  # 1: an image here lacks its framework; either way a table
    header = zh.stdout.splitlines()[0].split()
    assert header == ["课程", "模板", "镜像", "要求的框架", "构建的框架", "状态"]
    en = run(state, "courses", "status", **ENGLISH)
    assert en.returncode == zh.returncode and en.stdout.splitlines()[0].split()[:3] == ["COURSE", "TEMPLATE", "IMAGE"]


@pytest.mark.parametrize("auth", ["demo", "local", "lti"])
def test_the_login_box_of_up_is_chinese_and_stays_a_box(auth):
    """What `goldenhub up` prints last: the URL and the passwords in a frame whose right edge
    lines up on a terminal, Chinese characters being two columns wide."""
    import contextvars

    from hub_ext import i18n
    from hub_ext.cli.platform_cmd import login_box
    from hub_ext.hubconfig import Settings

    def zh_box():
        i18n.use("zh_CN")
        return login_box(Settings(auth=auth), {"student_password": "pw-123"}, running=True)

    box = contextvars.copy_context().run(zh_box)
    lines = box.splitlines()
    assert lines[1].startswith("| goldenhub 正在运行，地址 http://127.0.0.1:8000（登录方式：")
    assert "管理员：用户 admin" in box
    assert len({text_width(line) for line in lines}) == 1, box
    if auth == "demo":
        assert "pw-123" in box and "警告：任何知道班级密码的人都能以任何人的身份登录" in box
