"""Course titles and descriptions in two languages: the course file's mapping is checked
like any field, pages show the viewer's language, Python and the API see the English text."""

import pytest
from jinja2 import Environment

from hub_ext import i18n
from hub_ext.catalog import rules
from hub_ext.catalog.model import load_catalog
from hub_ext.paths import courses_dir


@pytest.fixture
def zh():
    token = i18n.use("zh_CN")
    yield
    i18n._current.reset(token)


def render(value) -> str:
    return Environment(autoescape=True).from_string("{{ v }}").render(v=value)


def test_pages_show_the_viewers_language_escaped(zh):
    title = rules.title({"en": "Intro <b>", "zh_CN": "入门 <b>"})
    assert render(title) == "入门 &lt;b&gt;"
    assert str(title) == "Intro <b>" and title.text("en") == "Intro <b>"


def test_english_viewer_and_a_missing_language_fall_back_to_english():
    title = rules.title({"en": "Intro"})
    assert render(title) == "Intro"
    assert render(rules.title({"en": "Intro", "zh_CN": "入门"})) == "Intro"


@pytest.mark.parametrize("value, says", [
    ({"zh_CN": "入门"}, "en always given"),
    ({"en": "x", "fr": "y"}, "allowed: en, zh_CN"),
    ({"en": "x", "zh_CN": "y" * 101}, "at most 100 characters"),
    ({"en": ""}, "non-empty"),
    ({"en": ["x"]}, "text of at most"),
])
def test_a_bad_mapping_is_refused_with_what_is_allowed(value, says):
    with pytest.raises(rules.RuleError, match=says.replace("(", r"\(")):
        rules.title(value)


def test_the_sample_courses_carry_chinese_titles(zh):
    catalog = load_catalog(courses_dir())
    course = catalog.courses["intro-python"]
    assert render(course.title) == "数据科学 Python 入门"
    assert course.title == "Introduction to Python for Data Science"
    assert "GPU" in render(catalog.templates["deep-learning-gpu"].title)
