"""Words that help (issue 10), as a student or an admin meets them on a real hub and service:
a GPU refusal on a machine with no GPU, a wrong confirmation of a self-reset, the words after a
reset, pages without HTTP codes, volume names or server paths, the admin page's students, and
an API error in the caller's language."""

from __future__ import annotations

import re
import textwrap
from html import unescape

import docker
import pytest
import requests

from hub_ext import contract
from tests.helpers import HUB_PORT, PREFIX, ServiceClient, copy_courses, hub_running, run_in_volumes, user_token

pytestmark = pytest.mark.integration

SERVICE = "/services/goldenhub/"
ANSWER = 60  # seconds: a bound on every request

# What a student never reads: an HTTP status line, a volume or container name, a server path.
INTERNALS = re.compile(r"HTTP \d{3}|\b(?:400|401|403|404|405|409|413|500|502|503|504)\b|goldenhub-[a-z0-9-]*home|" + re.escape(PREFIX) + r"-|/srv/|/var/lib/"
                       r"|Traceback|\bNone\b")


def visible_text(html: str) -> str:
    """The words of a page as a person reads them (no tags, scripts or styles)."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"(?s)<[^>]+>", " ", html))).strip()


class Browser:
    """A person logged in to the hub and, through its OAuth round trip, to the service."""

    def __init__(self, hub, name: str, password: str):
        self.hub = hub
        self.session = requests.Session()
        self.session.get(f"{hub.url}/hub/login", timeout=ANSWER)
        r = self.session.post(f"{hub.url}/hub/login", timeout=ANSWER, data={
            "username": name, "password": password, "_xsrf": self.cookie("_xsrf", "/hub")})
        assert r.status_code == 200, r.text[:300]
        page = self.session.get(f"{hub.url}{SERVICE}", timeout=ANSWER)
        assert page.status_code == 200, page.text[:300]

    def cookie(self, name: str, path: str) -> str:
        return next((c.value for c in self.session.cookies if c.name == name and c.path.startswith(path)), "")

    def service(self, method: str, path: str, **kwargs) -> requests.Response:
        if method == "POST":
            kwargs["data"] = {**kwargs.get("data", {}), "_xsrf": self.cookie("_xsrf", SERVICE)}
        return self.session.request(method, f"{self.hub.url}{SERVICE}{path}", timeout=ANSWER, **kwargs)

    def choose(self, template: str) -> requests.Response:
        """The hub's start page form, sent with one template chosen."""
        return self.session.post(f"{self.hub.url}/hub/spawn", timeout=ANSWER,
                                 data={contract.OPTION_TEMPLATE: template, "_xsrf": self.cookie("_xsrf", "/hub")})


# --- a machine with no GPU at all ----------------------------------------------------------------

GPU_CLASS = textwrap.dedent("""\
    id: gpuclass
    title: Vision class
    templates:
      - id: gpuclass-gpu
        title: Vision (GPU)
        image: goldenhub/course-intro-python:latest
        gpus: 1
        cpu: 1
        memory: 512M
      - id: gpuclass-cpu
        title: Vision (CPU)
        image: goldenhub/course-intro-python:latest
        gpus: 0
        cpu: 1
        memory: 512M
    """)


@pytest.fixture(scope="module")
def gpuless_hub(tmp_path_factory):
    """A hub on a machine without GPUs (an empty inventory: what NVML finds where there is no
    driver), with the sample courses and `gpuclass`, an enrolled course with a GPU and a CPU
    template."""
    tmp = tmp_path_factory.mktemp("gpuless")
    courses = copy_courses(tmp / "courses")
    (courses / "gpuclass.yaml").write_text(GPU_CLASS)
    with hub_running(tmp / "state", courses, HUB_PORT + 300, f"{PREFIX}w",
                     extra_config="c.GoldenSpawner.gpu_inventory = []\n") as hub:
        yield hub


def test_no_gpu_refusal_says_so_and_offers_only_the_courses_own_cpu_environment(gpuless_hub):
    hub = gpuless_hub
    hub.enrol("words-gpu", "gpuclass")
    student = Browser(hub, "words-gpu", hub.student_password())

    page = visible_text(student.choose("gpuclass-gpu").text)
    assert "This server has no GPU, so Vision (GPU) of Vision class cannot start here. " \
           "You can start Vision (CPU) instead." in page, page[:2000]
    assert "Try again later" not in page and not re.search(r"HTTP \d{3}", page)

    # A course with no CPU environment of its own: no other course's environment is offered
    page = visible_text(student.choose("deep-learning-gpu").text)
    assert "This server has no GPU, so PyTorch (1 GPU) of Deep Learning with PyTorch cannot start here. " \
           "Ask your instructor which environment to use instead." in page, page[:2000]
    assert "Python (CPU)" not in page.split("cannot start here")[1].split(".")[0]
    assert hub.server("words-gpu") is None  # nothing started, nothing half-made

    # The same refusal through the hub's API, in the student's language (zh-CN browser)
    r = hub.request("POST", "/users/words-gpu/server", json={"template": "gpuclass-gpu"},
                    headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 503
    message = r.json()["message"]
    assert message.startswith("这台服务器没有 GPU") and "Vision (CPU)" in message and "HTTP" not in message, message


def test_a_student_only_refused_a_gpu_is_not_listed_as_the_courses_student(gpuless_hub):
    hub = gpuless_hub
    r = hub.start("words-refused", {"template": "deep-learning-gpu"})
    assert r.status_code == 503, r.text  # refused: no GPU here
    state = hub.request("GET", "/users/words-refused?include_stopped_servers=1").json()["servers"][""]["state"]
    assert state.get(contract.STATE_TEMPLATE) == "deep-learning-gpu"  # what used to list them

    admin = Browser(hub, "admin", hub.admin_password())
    page = admin.service("GET", "admin")
    assert page.status_code == 200
    assert "words-refused" not in page.text


# --- the self-reset, as the student meets it (session hub) --------------------------------------

@pytest.fixture
def student_home(hub):
    """words-reset's home of course `lab`, with a file in it, labelled as the spawner labels it."""
    client = docker.from_env()
    user, course = "words-reset", "lab"
    hub.ensure_user(user)
    name = contract.home_volume_name(hub.prefix, user, course)
    client.volumes.create(name=name, labels={contract.LABEL_USER: user, contract.LABEL_COURSE: course})
    run_in_volumes(client, "echo 'week 1 notes' > /h/notes.txt", {name: "/h"})
    yield user, course, name
    for v in client.volumes.list(filters={"label": contract.label_filter(contract.LABEL_USER, user)}):
        v.remove(force=True)


def volume_names(user: str) -> set[str]:
    return {v.name for v in docker.from_env().volumes.list(
        filters={"label": contract.label_filter(contract.LABEL_USER, user)})}


def test_a_wrong_confirmation_shows_the_confirmation_page_again_and_resets_nothing(hub, student_home):
    user, course, home = student_home
    student = Browser(hub, user, hub.student_password())
    r = student.service("POST", f"reset?course={course}", data={"confirm": "lab please"})
    page = visible_text(r.text)
    assert r.status_code == 400
    assert "Nothing was reset: to confirm, type the course id lab exactly as shown." in page, page[:1500]
    assert 'name="confirm"' in r.text  # the same form, to try again
    assert volume_names(user) == {home}  # no backup made, the home untouched
    assert run_in_volumes(docker.from_env(), "cat /h/notes.txt", {home: "/h"}, mode="ro") == "week 1 notes\n"


def test_reset_done_says_where_the_files_went_without_a_volume_name(hub, student_home):
    user, course, home = student_home
    student = Browser(hub, user, hub.student_password())
    r = student.service("POST", f"reset?course={course}", data={"confirm": course})
    page = visible_text(r.text)
    assert r.status_code == 200, page[:1500]
    assert re.search(r"Your old files are kept in a backup made at \d{4}-\d\d-\d\d \d\d:\d\d UTC; it is listed "
                     r"under Backups on your environments page, and your instructor can restore it for you\.",
                     page), page[:1500]
    backups = volume_names(user) - {home}
    assert home not in volume_names(user) and len(backups) == 1  # the files really are in a backup
    assert not INTERNALS.search(page), INTERNALS.search(page)
    backup = backups.pop()
    assert backup not in r.text
    # The environments page lists the backup by course and time, not by its volume's name
    home_page = student.service("GET", "")
    assert home_page.status_code == 200 and 'id="my-backups"' in home_page.text
    assert backup not in home_page.text and not INTERNALS.search(visible_text(home_page.text))


def test_student_pages_show_no_internals(hub):
    student = Browser(hub, "words-looker", hub.student_password())
    for path, status in (("", 200), ("reset?course=no-such-course", 404), ("reset?course=lab", 200)):
        r = student.service("GET", path)
        page = visible_text(r.text)
        assert r.status_code == status, (path, page[:500])
        assert not INTERNALS.search(page), (path, INTERNALS.search(page), page[:1500])
    assert "There is no course no-such-course" in visible_text(student.service("GET", "reset?course=no-such-course").text)


def test_an_api_error_is_a_sentence_in_the_callers_language(hub):
    api = ServiceClient(hub, user_token(hub, "words-api"))
    r = api.call("POST", "/resets", json={"course": "nope"}, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 400 and r.json()["status"] == 400
    assert r.json()["message"].startswith("没有课程 'nope'"), r.json()
    r = api.call("POST", "/resets", json={"course": "nope"}, headers={"Accept-Language": "en-US"})
    assert r.json()["message"].startswith("There is no course 'nope'."), r.json()
