"""Students get no privileges and cannot reach each other; template fields cannot be
overridden by what a student posts."""

import pytest

from hub_ext import contract

pytestmark = pytest.mark.integration

PROBE = """python3 - <<'EOF'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=3).close(); print("open")
except OSError as e:
    print("closed", e)
EOF"""


def probe(hub, user, host, port):
    code, out = hub.exec(user, PROBE.replace("sys.argv[1], int(sys.argv[2])", f"{host!r}, {port}"))
    return out.strip()


@pytest.fixture(scope="module")
def two_students(hub):
    for user in ("iso-a", "iso-b"):
        hub.spawn(user, {"template": "lab-cpu"})
    yield "iso-a", "iso-b"
    for user in ("iso-a", "iso-b"):
        hub.stop(user)


def test_student_cannot_reach_another_students_server(hub, two_students):
    a, b = two_students
    b_ip = hub.container(b).attrs["NetworkSettings"]["Networks"]["goldenhub"]["IPAddress"]
    assert probe(hub, a, b_ip, 8888).startswith("closed")
    # The hub itself still answers student A's container (its API is on the gateway).
    gateway = hub.container(a).attrs["NetworkSettings"]["Networks"]["goldenhub"]["Gateway"]
    hub_port = int(hub.url.rsplit(":", 1)[1]) + 1
    assert probe(hub, a, gateway, hub_port) == "open"
    code, out = hub.exec(a, "python3 -c \"import os, urllib.request as u; "
                            "r = u.Request(os.environ['JUPYTERHUB_API_URL'] + '/user', "
                            "headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}); "
                            "print(u.urlopen(r).read().decode())\"")
    assert code == 0 and '"name": "iso-a"' in out.replace('":"', '": "')


def test_proxy_api_is_not_reachable_from_a_student(hub, two_students):
    a, _ = two_students
    gateway = hub.container(a).attrs["NetworkSettings"]["Networks"]["goldenhub"]["Gateway"]
    proxy_api_port = int(hub.url.rsplit(":", 1)[1]) + 2
    assert probe(hub, a, gateway, proxy_api_port).startswith("closed")


def test_student_container_has_no_privileges(hub, two_students):
    a, _ = two_students
    info = hub.container(a).attrs
    hc = info["HostConfig"]
    assert info["Config"]["User"] == "1000"
    assert hc["Privileged"] is False and hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["PidsLimit"] == 1024 and hc["Memory"] == 512 * 2**20 and hc["NanoCpus"] in (0, None)
    assert hc["CpuQuota"] == 100_000 and hc["CpuPeriod"] == 100_000
    sources = [m.get("Source", "") for m in info["Mounts"]]
    assert not any("docker.sock" in s for s in sources)
    code, out = hub.exec(a, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; id -u; ls /var/run/docker.sock")
    assert "CapEff:\t0000000000000000" in out and "NoNewPrivs:\t1" in out
    assert "\n1000\n" in out and "No such file" in out
    code, out = hub.exec(a, "sudo true || su -c true root < /dev/null")
    assert code != 0


@pytest.mark.parametrize("options", [
    {"template": "lab-cpu", "image": "evil/image"},
    {"template": "lab-cpu", "mounts": ["/:/host"]},
    {"template": "lab-cpu", "privileged": True},
    {"template": "lab-cpu", "gpus": 4},
    {"template": "lab-cpu", "env": {"NVIDIA_VISIBLE_DEVICES": "all"}},
])
def test_template_fields_cannot_be_overridden(hub, options):
    r = hub.start("override", options)
    assert r.status_code == 400
    message = r.json()["message"]
    extra = next(k for k in options if k != "template")
    assert f"Only an environment template may be chosen, not {extra}" in message
    assert "lab-cpu" in message and "intro-python-cpu" in message  # the allowed ids
    assert hub.server("override") is None


def test_form_post_with_extra_fields_uses_only_the_template(hub):
    session = hub.login("formpost")
    r = session.post(f"{hub.url}/hub/spawn", data={
        "template": "lab-cpu", "image": "evil/image", "_xsrf": session.cookies.get("_xsrf")}, timeout=60)
    assert r.status_code == 200
    hub.wait_ready("formpost")
    try:
        assert hub.container("formpost").attrs["Config"]["Image"] == "goldenhub/course-intro-python:latest"
    finally:
        hub.stop("formpost")


@pytest.mark.parametrize("user", ["has@", "User--Foo", "José", "UPPER"])
def test_tricky_usernames_get_their_own_container_and_home(hub, user):
    hub.spawn(user, {"template": "lab-cpu"})
    try:
        container = hub.container(user)
        assert container.name == contract.container_name(hub.prefix, user)
        labels = container.attrs["Config"]["Labels"]
        assert labels["goldenhub.user"] == user
        assert labels["goldenhub.home-volume"] == contract.home_volume_name(hub.prefix, user, "lab")
    finally:
        hub.stop(user)
