"""A course whose image was built without its framework is visible: `goldenhub courses status`,
a mark on the admin page, a note for students on the picker. The pure tests cover every
status; the integration tests use the real images of this machine, where PyTorch cannot be
built (no CUDA base) and the deep-learning course is built on scipy instead."""

from __future__ import annotations

import asyncio
import re
import shutil
import textwrap

import pytest
import requests

from hub_ext import contract
from hub_ext.images import status as image_status
from hub_ext.images.status import MISSING, OK, SUBSTITUTED, UNKNOWN, LabelCache, make_image_status
from spawner.form import make_options_form
from tests.helpers import ARTIFACTS, browser_login, goldenhub, user_token

# The labels `goldenhub images build` gave the deep-learning image on a machine without CUDA.
SUBSTITUTED_LABELS = {contract.LABEL_IMAGE_LAYER: "course", contract.LABEL_IMAGE_FRAMEWORK: "scipy",
                      contract.LABEL_IMAGE_FRAMEWORK_REQUESTED: "pytorch", contract.LABEL_COURSE: "deep-learning"}
IMAGE = "goldenhub/course-deep-learning:latest"
STUDENT_NOTE = "This environment was built without PyTorch on this server; your instructor knows."


def status_of(framework, labels, image=IMAGE):
    return make_image_status("deep-learning", "deep-learning-gpu", framework, image, labels)


# --- pure: every status -------------------------------------------------------------------------


def test_built_on_its_framework_is_ok_and_tells_students_nothing():
    s = status_of("scipy", {contract.LABEL_IMAGE_FRAMEWORK: "scipy"})
    assert (s.state, s.asked, s.built, s.degraded) == (OK, "scipy", "scipy", False)
    assert s.sentence == "ok: built on scipy" and s.student_note == ""


def test_built_without_cuda_says_what_students_miss_and_what_to_do():
    s = status_of("pytorch", SUBSTITUTED_LABELS)
    assert (s.state, s.built, s.needs_cuda_base, s.degraded) == (SUBSTITUTED, "scipy", True, True)
    assert s.sentence == ("built on scipy instead of pytorch: students will not find torch; build on a machine "
                          "with the CUDA base image (goldenhub images build --course deep-learning)")
    assert s.student_note == STUDENT_NOTE


def test_a_framework_changed_after_the_build_asks_for_a_rebuild():
    s = status_of("tensorflow", {contract.LABEL_IMAGE_FRAMEWORK: "scipy"})
    assert (s.state, s.needs_cuda_base) == (SUBSTITUTED, False)
    assert s.sentence.startswith("built on scipy instead of tensorflow: students will not find tensorflow; ")
    assert "goldenhub images build --course deep-learning" in s.sentence and "CUDA" not in s.sentence
    assert s.student_note == "This environment was built without TensorFlow on this server; your instructor knows."


def test_a_missing_image_is_degraded_for_admins_and_left_to_the_start_refusal_for_students():
    s = status_of("pytorch", None)
    assert (s.state, s.built, s.degraded) == (MISSING, None, True)
    assert s.sentence == (f"image {IMAGE} is not on this server: students cannot start it; "
                          "build it with goldenhub images build --course deep-learning")
    assert s.student_note == ""


@pytest.mark.parametrize("labels", [
    {},  # a registry image: no labels at all
    {"org.opencontainers.image.title": "somebody's image"},
    {contract.LABEL_IMAGE_FRAMEWORK: "none"},  # a base layer
])
def test_an_image_not_built_by_goldenhub_is_unknown_and_not_degraded(labels):
    s = status_of("pytorch", labels, image="registry.example.org/lab/torch:2")
    assert (s.state, s.built, s.degraded, s.student_note) == (UNKNOWN, None, False, "")
    assert s.sentence == "not checked: the image was not built by goldenhub (it has no framework label)"


def test_a_course_without_a_framework_is_not_checked():
    s = status_of(None, SUBSTITUTED_LABELS)
    assert (s.state, s.degraded, s.student_note) == (UNKNOWN, False, "")
    assert s.sentence == "not checked: the course file names no framework"


@pytest.mark.parametrize("hostile", [
    "x" * 65, "PyTorch", "scipy; rm -rf /", "<script>alert(1)</script>", "scipy\n", "", 42, None, ["scipy"]])
def test_a_label_goldenhub_never_writes_is_ignored_whole(hostile):
    """Full match, bounded: an odd framework label makes the image unknown, never a sentence
    carrying the label's text; an odd 'requested' label only loses the CUDA advice."""
    s = status_of("pytorch", {contract.LABEL_IMAGE_FRAMEWORK: hostile})
    assert (s.state, s.built) == (UNKNOWN, None)
    s = status_of("pytorch", {contract.LABEL_IMAGE_FRAMEWORK: "scipy",
                              contract.LABEL_IMAGE_FRAMEWORK_REQUESTED: hostile})
    assert (s.state, s.needs_cuda_base) == (SUBSTITUTED, False) and "CUDA" not in s.sentence


def test_check_courses_reads_each_image_once_and_keeps_template_order():
    from hub_ext.catalog.model import load_catalog
    from hub_ext.paths import courses_dir

    courses = load_catalog(courses_dir()).courses.values()
    asked = []

    def labels_of(image):
        asked.append(image)
        return SUBSTITUTED_LABELS if "deep-learning" in image else {contract.LABEL_IMAGE_FRAMEWORK: "scipy"}

    found = image_status.check_courses([*courses, *courses], labels_of)
    assert [(s.template, s.state) for s in found][:2] == [("deep-learning-gpu", SUBSTITUTED),
                                                          ("intro-python-cpu", OK)]
    assert sorted(asked) == sorted(set(asked)) == sorted({t.image for c in courses for t in c.templates})


def test_label_cache_keeps_labels_briefly_bounded_and_never_a_failure():
    now = [0.0]
    cache = LabelCache(ttl_s=30, size=2, clock=lambda: now[0])
    reads = []

    async def read(image):
        reads.append(image)
        if image == "broken":
            raise RuntimeError("engine down")
        return {"n": str(len(reads))}

    async def scenario():
        assert await cache.get("a", read) == {"n": "1"}
        assert await cache.get("a", read) == {"n": "1"}  # kept
        now[0] = 31
        assert await cache.get("a", read) == {"n": "2"}  # expired: read again
        await cache.get("b", read)
        await cache.get("c", read)  # size 2: "a", the oldest, goes
        assert await cache.get("a", read) == {"n": "5"}
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await cache.get("broken", read)

    asyncio.run(scenario())
    assert reads == ["a", "a", "b", "c", "a", "broken", "broken"]


def test_the_picker_shows_the_note_beside_its_template_only_escaped():
    from hub_ext.catalog.model import load_catalog
    from hub_ext.paths import courses_dir

    templates = list(load_catalog(courses_dir()).templates.values())
    html = make_options_form(templates, notes={"deep-learning-gpu": STUDENT_NOTE, "intro-python-cpu": "<b>x</b>"})
    assert STUDENT_NOTE in _choice(html, "deep-learning-gpu")
    assert "&lt;b&gt;x&lt;/b&gt;" in _choice(html, "intro-python-cpu") and "<b>x</b>" not in html
    assert "goldenhub-framework-note" not in make_options_form(templates)


def _choice(html: str, template: str) -> str:
    """The picker's block of one template (its radio button, title, resources and notes)."""
    blocks = [b for b in html.split('<div class="form-check') if f'value="{template}"' in b]
    assert len(blocks) == 1, html
    return blocks[0]


# --- integration: the real images of this machine ------------------------------------------------


@pytest.mark.integration
def test_students_see_the_note_beside_the_deep_learning_environment(hub):
    html = hub.options_form("fw-student")
    assert STUDENT_NOTE in _choice(html, "deep-learning-gpu")
    assert "goldenhub-framework-note" not in _choice(html, "intro-python-cpu")
    assert html.count("goldenhub-framework-note") == 1


@pytest.mark.integration
def test_courses_status_marks_deep_learning_and_exits_1(hub, courses_dir):
    r = goldenhub("courses", "status", str(courses_dir), env={"GOLDENHUB_STATE_DIR": str(hub.state_dir)})
    assert r.returncode == 1
    rows = {line.split()[1]: line for line in r.stdout.splitlines()[1:] if len(line.split()) > 5}
    assert re.search(r"deep-learning\s+deep-learning-gpu\s+goldenhub/course-deep-learning:latest\s+pytorch\s+scipy"
                     r"\s+built on scipy instead of pytorch: students will not find torch; build on a machine "
                     r"with the CUDA base image", rows["deep-learning-gpu"])
    assert re.search(r"intro-python\s+intro-python-cpu\s+\S+\s+scipy\s+scipy\s+ok: built on scipy$",
                     rows["intro-python-cpu"])
    assert "deep-learning" in r.stderr and "intro-python" not in r.stderr
    help_text = " ".join(goldenhub("courses", "status", "--help").stdout.split())
    assert "1 when an image is missing or built without its course's framework" in help_text


@pytest.mark.integration
def test_courses_status_is_0_when_all_is_ok_or_unchecked_and_1_for_a_missing_image(tmp_path):
    from hub_ext.paths import courses_dir as sample_courses

    shutil.copy(sample_courses() / "intro-python.yaml", tmp_path)
    (tmp_path / "foreign.yaml").write_text(textwrap.dedent("""\
        id: foreign
        title: An image goldenhub did not build
        framework: scipy
        templates:
          - id: foreign-cpu
            title: Foreign
            image: goldenhub/os-base:bookworm
            gpus: 0
            cpu: 1
            memory: 512M
        """))
    env = {"GOLDENHUB_STATE_DIR": str(tmp_path / "state")}
    r = goldenhub("courses", "status", str(tmp_path), env=env)
    assert r.returncode == 0
    assert "not checked: the image was not built by goldenhub" in r.stdout and "ok: built on scipy" in r.stdout
    (tmp_path / "foreign.yaml").write_text((tmp_path / "foreign.yaml").read_text().replace(
        "goldenhub/os-base:bookworm", "goldenhub/course-gh10c-never-built:latest"))
    r = goldenhub("courses", "status", str(tmp_path), env=env)
    assert r.returncode == 1
    assert "image goldenhub/course-gh10c-never-built:latest is not on this server" in r.stdout


@pytest.mark.integration
def test_the_admin_page_marks_the_deep_learning_course(hub):
    admin = user_token(hub, "admin", note="framework status")
    r = requests.get(f"{hub.url}/services/goldenhub/admin", headers={"Authorization": f"token {admin}"}, timeout=120)
    assert r.status_code == 200, r.text[-2000:]
    sections = dict(re.findall(r'<section id="course-([a-z0-9-]+)">(.*?)</section>', r.text, re.S))
    mark = re.search(r'class="framework-mark[^"]*" data-template="deep-learning-gpu">(.*?)</p>',
                     sections["deep-learning"], re.S)
    assert mark and "built on scipy instead of pytorch: students will not find torch; build on a machine with " \
                    "the CUDA base image" in mark.group(1)
    assert "framework-mark" not in sections["intro-python"]


@pytest.mark.browser
def test_in_a_browser_the_student_and_the_admin_see_it(hub, browser):
    """What Chromium shows: the note under the deep-learning choice of the picker, the mark
    in the deep-learning section of the admin page (screenshots in artifacts/)."""
    page = browser_login(browser, hub, "fw-browser", hub.student_password())
    try:
        page.goto(f"{hub.url}/hub/spawn")
        choice = page.locator(".form-check", has=page.locator("input[value=deep-learning-gpu]"))
        assert choice.locator(".goldenhub-framework-note").inner_text() == STUDENT_NOTE
        assert choice.locator(".goldenhub-framework-note").is_visible()
        page.screenshot(path=str(ARTIFACTS / "framework-note-picker.png"), full_page=True)
    finally:
        page.context.close()
    page = browser_login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin")
        mark = page.locator("#course-deep-learning .framework-mark")
        assert mark.is_visible() and "students will not find torch" in mark.inner_text()
        assert page.locator("#course-intro-python .framework-mark").count() == 0
        page.locator("#course-deep-learning").screenshot(path=str(ARTIFACTS / "framework-mark-admin.png"))
    finally:
        page.context.close()
