"""The lighter server start (issue 13): what the golden images cut from a Jupyter server's
start must cost a student nothing. A server of the rebuilt image, started by a real hub,
still merges its courseware, opens a terminal, runs a kernel, serves JupyterLab's Chinese
language pack and nbgitpuller's links. The pure part checks benchmarks/server_start.py's
arithmetic and its catalog.

The browser tests of JupyterLab in Chinese with the branding are in tests/test_lab_look.py
(run them with this file); the courseware merge rules in tests/test_courseware.py."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from benchmarks import server_start
from hub_ext.catalog.model import load_course_file
from tests.helpers import user_token

WS_TIMEOUT = 120  # seconds; a bound on every websocket wait (a kernel starts inside it)


# --------------------------------------------------------------------------- pure


def test_percentile_interpolates_and_knows_no_values():
    assert server_start.percentile([], 0.5) is None
    assert server_start.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert server_start.percentile([1.0, 2.0], 0.5) == 1.5


def test_images_are_a_list_without_duplicates():
    assert server_start.parse_images(" a:1, b:2 ,") == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="names no image"):
        server_start.parse_images(" , ")
    with pytest.raises(ValueError, match="twice"):
        server_start.parse_images("a:1,a:1")


def test_cpu_is_read_from_either_cgroup_version():
    assert server_start.parse_cpu("cpuacct.usage", "2500000000\n") == 2.5
    assert server_start.parse_cpu("cpu.stat", "usage_usec 1500000\nuser_usec 1\n") == 1.5
    with pytest.raises(ValueError):
        server_start.parse_cpu("cpu.stat", "user_usec 1\n")


def test_rounds_interleave_the_images_after_uncounted_warm_up():
    plan = server_start.plan_rounds(["old", "new"], starts=2, warmup=1)
    assert plan == [(0, "old", False), (0, "new", False), (1, "old", True), (1, "new", True),
                    (2, "old", True), (2, "new", True)]


def test_the_benchmark_catalog_has_a_stripped_template_per_image(tmp_path):
    ids = server_start.make_course(tmp_path, ["goldenhub/a:baseline-1", "goldenhub/a:latest"])
    course = load_course_file(tmp_path / "serverstart.yaml")  # the hub's own validator
    assert [t.image for t in course.templates] == ["goldenhub/a:baseline-1", "goldenhub/a:latest"]
    assert [t.id for t in course.templates] == list(ids.values())
    for t in course.templates:
        assert t.courseware is None and not t.datasets and t.gpus == 0


def test_report_and_json_give_the_ratio_against_the_first_image():
    old = server_start.ImageResult("old", [server_start.Start("old", True, 4.0, 2.0, 2.2),
                                           server_start.Start("old", True, 6.0, 4.0, 4.4)])
    new = server_start.ImageResult("new", [server_start.Start("new", True, 3.0, 1.0, 1.1),
                                           server_start.Start("new", False, message="not ready within 9s")])
    out = server_start.make_json([old, new], {"cores": 2})
    assert out["machine"] == {"cores": 2}
    assert out["results"][0] == {"image": "old", "starts": 2, "ok": 2, "cpu_s_p50": 3.0,
                                 "cpu_settled_s_p50": pytest.approx(3.3), "wall_s_p50": 5.0}
    assert out["ratio_cpu"] == pytest.approx(1 / 3) and out["ratio_wall"] == pytest.approx(0.6)
    text = server_start.format_report([old, new], "2 cores")
    assert "machine: 2 cores" in text and "0.33" in text
    assert "failed start of new: not ready within 9s" in text


# --------------------------------------------------------------------------- a real server


async def _ws_until(url: str, token: str, send: list[str], done) -> list:
    """Open a websocket with the user's token, send the messages, read until done(msg)."""
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=WS_TIMEOUT)
    conn = await asyncio.wait_for(websocket_connect(request), WS_TIMEOUT)
    seen = []
    try:
        for text in send:
            await conn.write_message(text)

        async def read():
            while True:
                raw = await conn.read_message()
                assert raw is not None, f"the websocket closed; read so far: {seen[-5:]}"
                msg = json.loads(raw)
                seen.append(msg)
                if done(msg):
                    return

        await asyncio.wait_for(read(), WS_TIMEOUT)
    finally:
        conn.close()
    return seen


def _execute_request(code: str) -> str:
    session = uuid.uuid4().hex
    return json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "username": "student", "session": session,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False},
    })


@pytest.mark.integration
async def test_a_light_server_still_gives_the_student_everything(hub, lab_remote):
    user = "light-student"
    hub.ensure_user(user)
    hub.spawn(user, {"template": "lab-cpu"})
    try:
        # The startup script's courseware merge (the gitpuller CLI) ran.
        assert hub.exec(user, "cat ~/lab/hello.py")[0] == 0
        token = user_token(hub, user)
        api = requests.Session()
        api.headers["Authorization"] = f"token {token}"
        base = f"{hub.url}/user/{user}"
        ws_base = base.replace("http://", "ws://", 1)

        # JupyterLab answers, with its Chinese language pack.
        assert api.get(f"{base}/lab", timeout=30).status_code == 200
        zh = api.get(f"{base}/lab/api/translations/zh_CN", timeout=30)
        assert zh.status_code == 200 and zh.json().get("data"), zh.text[:300]
        assert "文件" in json.dumps(zh.json()["data"], ensure_ascii=False)

        # nbgitpuller's /git-pull links are still served.
        pull = api.get(f"{base}/git-pull", params={"repo": lab_remote.url_from_container("lab")}, timeout=30)
        assert pull.status_code == 200, pull.text[:300]

        # A terminal opens and runs a command.
        t = api.post(f"{base}/api/terminals", timeout=30)
        assert t.status_code == 200, t.text[:300]
        name = t.json()["name"]
        out = await _ws_until(f"{ws_base}/terminals/websocket/{name}", token,
                              [json.dumps(["stdin", "echo $((6*7))z\r"])],
                              lambda m: m[0] == "stdout" and "42z" in m[1])
        assert any(m[0] == "stdout" and "42z" in m[1] for m in out)

        # A kernel starts and runs code.
        k = api.post(f"{base}/api/kernels", json={"name": "python3"}, timeout=60)
        assert k.status_code == 201, k.text[:300]
        replies = await _ws_until(f"{ws_base}/api/kernels/{k.json()['id']}/channels", token,
                                  [_execute_request("print(6 * 7)")],
                                  lambda m: m.get("msg_type") == "stream" and m["content"].get("name") == "stdout")
        assert replies[-1]["content"]["text"] == "42\n"
        api.delete(f"{base}/api/kernels/{k.json()['id']}", timeout=30)
    finally:
        hub.stop(user)

