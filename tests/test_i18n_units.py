"""The i18n core, pure: which language a request gets (normalize, Accept-Language with
q-values, junk and huge headers, negotiate's order), the one time/size/memory style
(hub_ext.i18n.format), translation with named placeholders and plurals, and the Jinja
extension (autoescaped placeholders, plurals in Chinese and English)."""

from __future__ import annotations

import contextvars
from datetime import datetime, timedelta, timezone

import pytest
from jinja2 import Environment
from markupsafe import Markup

from hub_ext import i18n
from hub_ext.i18n import _, ngettext
from hub_ext.i18n.format import iso, memory_bytes, memory_text, size_text, when_html, when_text
from hub_ext.i18n.jinja import GoldenhubI18n


@pytest.fixture(autouse=True)
def english_default():
    """Each test starts with the platform default English and leaves it so."""
    i18n.set_default("en")
    yield
    i18n.set_default("en")


def in_language(lang, function, *args):
    """function(*args) served in `lang`, in a context of its own (as one request is)."""
    def served():
        i18n.use(lang)
        return function(*args)
    return contextvars.copy_context().run(served)


# --- which language ---------------------------------------------------------------------------

@pytest.mark.parametrize("tag, expected", [
    ("zh-CN", "zh_CN"), ("zh_CN", "zh_CN"), ("ZH-cn", "zh_CN"), ("zh", "zh_CN"), ("zh-Hans", "zh_CN"),
    ("zh-Hans-CN", "zh_CN"), ("zh-SG", "zh_CN"), (" zh-CN ", "zh_CN"), ("en", "en"), ("en-US", "en"),
    ("EN-gb", "en"), ("zh-TW", None), ("fr", None), ("english", None), ("", None), (None, None),
    ("zh-CN" + "x" * 40, None), ("en_" + "x" * 40, None), ("*", None),
])
def test_normalize(tag, expected):
    assert i18n.normalize(tag) == expected


@pytest.mark.parametrize("header, expected", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("fr-FR, de;q=0.9, zh;q=0.5", "zh_CN"),  # the best language goldenhub speaks
    ("zh;q=0.1, en;q=0.2", "en"),  # q-values, not order
    ("zh-CN;q=0.5, en-GB;q=0.5", "zh_CN"),  # a tie: the first
    ("en;q=1.0, zh;q=1", "en"),
    ("zh;q=0", None),  # q=0: "not this one"
    ("*", None), ("fr", None), ("", None), (None, None),
    ("zh;q=abc", None), ("zh;q=2", None), ("zh;q=0.5000", None), ("zh;;", None), ("<script>", None),
    ("zh-CN;q=0.8, garbage!!, en;q=0.9", "en"),  # a junk item is skipped, the rest still count
    ("en;q=0.1," * 40 + "zh", "en"),  # only the first 32 items are read
    ("x" * 5000 + ",zh", None),  # only the first 1000 characters
    ("en;q=0.1, " + " " * 2000 + "zh", "en"),
])
def test_accept_language(header, expected):
    assert i18n.from_accept_language(header) == expected


def test_negotiate_order():
    assert i18n.negotiate("zh_CN", "en", "en") == "zh_CN"  # ?lang= first
    assert i18n.negotiate(None, "zh_CN", "en") == "zh_CN"  # then the cookie
    assert i18n.negotiate("klingon", "zh-CN", "en") == "zh_CN"  # a bad ?lang= is passed over
    assert i18n.negotiate(None, "'; drop", "zh-CN,en;q=0.5") == "zh_CN"  # then Accept-Language
    assert i18n.negotiate(None, None, None) == "en"  # then the platform default
    i18n.set_default("zh-CN")
    assert i18n.negotiate(None, None, "fr") == "zh_CN"
    assert i18n.negotiate("en", None, None) == "en"
    i18n.set_default("klingon")  # an unknown default is English
    assert i18n.default() == "en"


def test_html_lang_and_the_current_language_of_a_context():
    assert i18n.html_lang("zh_CN") == "zh-CN" and i18n.html_lang("en") == "en"
    assert in_language("zh-CN", i18n.current) == "zh_CN"
    assert in_language("fr", i18n.current) == "en"  # unknown: the default
    assert i18n.current() == "en"  # another context's choice does not leak here
    assert in_language("zh_CN", i18n.html_lang) == "zh-CN"


# --- translation --------------------------------------------------------------------------------

def test_translate_with_named_placeholders_and_plurals():
    assert in_language("zh_CN", _, "No backups") == "没有备份"
    assert in_language("en", _, "No backups") == "No backups"
    assert in_language("zh_CN", lambda: _("%(user)s has no running server", user="lin")) == "lin 没有运行中的服务器"
    one, many = "%(num)d student server", "%(num)d student servers"
    assert [in_language("en", ngettext, one, many, n) for n in (0, 1, 2)] == [
        "0 student servers", "1 student server", "2 student servers"]
    assert [in_language("zh_CN", ngettext, one, many, n) for n in (1, 5)] == ["1 个学生服务器", "5 个学生服务器"]
    assert in_language("zh_CN", _, "a sentence no catalog has") == "a sentence no catalog has"  # English, not ""


def test_a_placeholder_value_is_not_translated_or_formatted_again():
    assert in_language("zh_CN", lambda: _("%(user)s: password reset", user="%(user)s 100%")) == "%(user)s 100%：密码已重置"


# --- one style for times, sizes and memory ----------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (datetime(2026, 11, 26, 12, 53, 11, 123456, tzinfo=timezone.utc), "2026-11-26 12:53 UTC"),
    (datetime(2026, 11, 26, 12, 53, 59), "2026-11-26 12:53 UTC"),  # naive: stored as UTC
    (datetime(2026, 11, 26, 20, 53, tzinfo=timezone(timedelta(hours=8))), "2026-11-26 12:53 UTC"),
    ("2026-11-26T12:53:11.123456Z", "2026-11-26 12:53 UTC"),
    ("2026-11-26T12:53:11+00:00", "2026-11-26 12:53 UTC"),
    ("2026-11-27T01:00:00+08:00", "2026-11-26 17:00 UTC"),
    ("2026-11-26 12:53:11", "2026-11-26 12:53 UTC"),
    (0, "1970-01-01 00:00 UTC"), (1_780_000_000.5, "2026-05-28 20:26 UTC"),
    (None, "–"), ("", "–"), ("not a time", "–"), ("2026-13-45T99:99", "–"), ("x" * 10_000, "–"),
])
def test_when_text(value, expected):
    assert when_text(value) == expected


def test_when_html_is_a_time_element_and_escapes():
    html = when_html("2026-11-26T12:53:11.5+00:00")
    assert isinstance(html, Markup)
    assert html == '<time datetime="2026-11-26T12:53:11Z">2026-11-26 12:53 UTC</time>'
    assert when_html(None) == "–" and when_html(None, empty="<never>") == "&lt;never&gt;"
    assert iso(None) == "" and iso("2026-11-26T12:53:11.9Z") == "2026-11-26T12:53:11Z"
    assert when_text(None, empty="-") == "-"


@pytest.mark.parametrize("n, expected", [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (10 * 1024 - 1, "10 KiB"),
    (512 * 2**20, "512 MiB"), (4 * 2**30, "4 GiB"), (int(1.5 * 2**40), "1.5 TiB"), (9.94 * 2**30, "9.9 GiB"),
    (123 * 2**30, "123 GiB"), (2**50, "1 PiB"), (2**70, "1048576 PiB"), (-2048, "-2 KiB"), (None, "–"),
    (2.5, "2 B"),
])
def test_size_text(n, expected):
    assert size_text(n) == expected


@pytest.mark.parametrize("limit, expected_bytes, expected_text", [
    ("4G", 4 * 2**30, "4 GiB"), ("4096M", 4 * 2**30, "4 GiB"), ("4g", 4 * 2**30, "4 GiB"),
    ("4GiB", 4 * 2**30, "4 GiB"), ("4GB", 4 * 2**30, "4 GiB"), (" 4 G ", 4 * 2**30, "4 GiB"),
    ("512M", 512 * 2**20, "512 MiB"), ("1.5g", int(1.5 * 2**30), "1.5 GiB"), ("2T", 2 * 2**40, "2 TiB"),
    ("1048576", 2**20, "1 MiB"), (1024, 1024, "1 KiB"), ("100k", 100 * 1024, "100 KiB"),
    (None, None, "–"), ("", None, "–"), ("lots", None, "lots"), ("4X", None, "4X"), ("-4G", None, "-4G"),
    ("9" * 1000 + "G", None, "9" * 1000 + "G"),  # bounded: never an overflow
])
def test_memory(limit, expected_bytes, expected_text):
    assert memory_bytes(limit) == expected_bytes
    assert memory_text(limit) == expected_text


# --- the Jinja extension ------------------------------------------------------------------------

@pytest.fixture
def env():
    from hub_ext.i18n.format import install_filters

    environment = Environment(autoescape=True, extensions=[GoldenhubI18n])
    install_filters(environment)
    return environment


def test_placeholders_are_autoescaped_in_both_languages(env):
    page = env.from_string('<p>{{ _("%(user)s has no running server", user=who) }}</p>')
    assert page.render(who="<b>lin</b>") == "<p>&lt;b&gt;lin&lt;/b&gt; has no running server</p>"
    assert in_language("zh_CN", page.render, {"who": "<b>lin</b>"}) == "<p>&lt;b&gt;lin&lt;/b&gt; 没有运行中的服务器</p>"
    block = env.from_string("{% trans name=who %}Hello {{ name }}{% endtrans %}")
    assert block.render(who="<i>") == "Hello &lt;i&gt;"


def test_plurals_in_templates(env):
    page = env.from_string('{{ ngettext("%(num)d student server", "%(num)d student servers", n) }}')
    assert [page.render(n=n) for n in (1, 3)] == ["1 student server", "3 student servers"]
    assert [in_language("zh_CN", page.render, {"n": n}) for n in (1, 3)] == ["1 个学生服务器", "3 个学生服务器"]


def test_globals_and_filters(env):
    page = env.from_string('<html lang="{{ html_lang() }}">{{ current_language() }} {{ languages["zh_CN"] }} '
                           '{{ t|when }} {{ n|size }} {{ m|memory }}</html>')
    values = {"t": "2026-11-26T12:53:00Z", "n": 4 * 2**30, "m": "4096M"}
    assert in_language("zh_CN", page.render, values) == (
        '<html lang="zh-CN">zh_CN 简体中文 <time datetime="2026-11-26T12:53:00Z">2026-11-26 12:53 UTC</time> '
        '4 GiB 4 GiB</html>')
    assert page.render(values).startswith('<html lang="en">en ')
