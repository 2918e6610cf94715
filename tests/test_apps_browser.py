"""VS Code and TensorBoard in the browser (issue 14), with real parts: the session `hub`,
servers started from templates of a test course on the course image (its framework layer
carries code-server, TensorBoard and jupyter-server-proxy), and Debian's Chromium.

A student opens VS Code from its JupyterLab launcher tile, creates a file through VS Code's own
explorer and sees it in JupyterLab's file browser; opens TensorBoard from its tile on an event
file the test writes with TensorBoard's own (TensorFlow-free) event writer inside the container
and sees the run and its scalar tag; a template with `default_url: /vscode` lands the student
in VS Code. GOLDENHUB_TEST_APPS_IMAGE names another image, e.g. a framework built under a test tag.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.helpers import ARTIFACTS, browser_login, extra_course

IMAGE = os.environ.get("GOLDENHUB_TEST_APPS_IMAGE", "goldenhub/course-intro-python:latest")
TEMPLATES = f"""\
- id: apps-lab
  title: Apps in JupyterLab
  image: {IMAGE}
  gpus: 0
  cpu: 1
  memory: 1G
- id: apps-vscode
  title: Apps, VS Code first
  image: {IMAGE}
  gpus: 0
  cpu: 1
  memory: 1G
  default_url: /vscode
"""
# TensorBoard's event writer without TensorFlow: one run with one scalar tag, three steps,
# in the conventional folder (~/tensorboard-logs/<run>).
WRITE_EVENTS = textwrap.dedent("""\
    import os, time
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    writer = EventFileWriter(os.path.expanduser("~/tensorboard-logs/run-apples"))
    for step in range(3):
        value = Summary.Value(tag="apples/loss", simple_value=1.0 / (step + 1))
        writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=[value])))
    writer.close()
    """)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def course(courses_dir):
    with extra_course(courses_dir, "apps", TEMPLATES):
        yield


@pytest.fixture(scope="module")
def student(hub, course):
    """A student whose server of template apps-lab runs for the module's tests."""
    user = "appsstudent"
    hub.spawn(user, {"template": "apps-lab"})
    yield user
    hub.request("DELETE", f"/users/{user}/server")


def lab_page(browser, hub, user: str):
    page = browser_login(browser, hub, user, hub.student_password())
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/user/{user}/lab")
    return page


def open_tile(page, title: str):
    """Click a launcher tile of jupyter-server-proxy (it opens a new browser tab) and return that tab."""
    tile = page.locator(".jp-LauncherCard").filter(has_text=title)
    with page.context.expect_page() as opened:
        tile.click()
    tab = opened.value
    tab.set_default_timeout(120_000)
    return tab


def listening(hub, user: str) -> set[str]:
    """The TCP addresses listening inside the user's container, as "address:port" in hex (/proc/net/tcp*)."""
    _, out = hub.exec(user, "cat /proc/net/tcp /proc/net/tcp6")
    found = set()
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":  # LISTEN
            found.add(fields[1])
    return found


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 (the kernel writes IPv4 little-endian: 127 is the last byte) or ::1."""
    host = address.split(":")[0]
    return (len(host) == 8 and host.endswith("7F")) or host == "00000000000000000000000001000000"


def test_a_file_created_in_vscode_shows_in_jupyterlab(hub, student, browser):
    name = "made-in-vscode.py"
    page = lab_page(browser, hub, student)
    try:
        code = open_tile(page, "VS Code")
        assert f"/user/{student}/vscode/" in code.url
        code.locator(".monaco-workbench").wait_for()
        assert "goldenhub" in code.title()  # code-server's --app-name: the platform's name
        # VS Code's own explorer: its "New File..." action on the home folder, then type and save
        code.locator(".pane-header", has_text="jovyan").hover()
        code.locator('.pane-header [aria-label^="New File"]').click()
        box = code.locator(".explorer-folders-view .monaco-inputbox input")
        box.fill(name)
        box.press("Enter")
        code.locator(".tabs-container .tab", has_text=name).wait_for()
        code.locator(".part.editor .monaco-editor .view-lines").first.click()
        code.keyboard.type("print('hello from VS Code')")
        code.keyboard.press("Control+S")
        code.locator(".tabs-container .tab.dirty", has_text=name).wait_for(state="detached")
        ARTIFACTS.mkdir(exist_ok=True)
        code.screenshot(path=str(ARTIFACTS / "apps-vscode.png"))

        listing = page.locator(".jp-DirListing-content")
        listing.get_by_text(name, exact=True).wait_for()  # JupyterLab's file browser sees it (its own poll)
        assert hub.exec(student, f"cat ~/{name}") == (0, "print('hello from VS Code')")
        # the image's Python is VS Code's interpreter; VS Code listens on no TCP port
        code_, settings = hub.exec(student, "cat ~/.local/share/code-server/Machine/settings.json")
        assert code_ == 0 and '"python.defaultInterpreterPath": "/opt/jupyter/bin/python"' in settings
        exposed = {a for a in listening(hub, student) if not is_loopback(a)}
        assert exposed and all(a.endswith(":22B8") for a in exposed), exposed  # 8888: the Jupyter server alone
    finally:
        page.context.close()


def test_tensorboard_from_its_tile_shows_a_run_written_in_the_home(hub, student, browser):
    code, out = hub.exec(student, f"python - <<'EOF'\n{WRITE_EVENTS}EOF")
    assert code == 0, out
    page = lab_page(browser, hub, student)
    try:
        board = open_tile(page, "TensorBoard")
        assert f"/user/{student}/tensorboard/" in board.url
        board.get_by_text("run-apples").first.wait_for()
        board.get_by_text("apples/loss").first.wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        board.screenshot(path=str(ARTIFACTS / "apps-tensorboard.png"))
        # TensorBoard's port is on the container's loopback only
        exposed = {a for a in listening(hub, student) if not is_loopback(a)}
        assert exposed and all(a.endswith(":22B8") for a in exposed), exposed
    finally:
        page.context.close()


def test_a_template_with_default_url_vscode_lands_the_student_in_vscode(hub, course, browser):
    user = "appslander"
    page = browser_login(browser, hub, user, hub.student_password())
    page.set_default_timeout(240_000)
    try:
        page.goto(f"{hub.url}/hub/spawn")
        page.check("#template-apps-vscode")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"**/user/{user}/vscode/**")
        page.locator(".monaco-workbench").wait_for()
        page.locator(".pane-header", has_text="jovyan").wait_for()  # the home is VS Code's folder
        assert "goldenhub" in page.title()
    finally:
        page.context.close()
        hub.request("DELETE", f"/users/{user}/server")
