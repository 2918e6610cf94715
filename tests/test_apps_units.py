"""VS Code and TensorBoard in the browser (issue 14), the parts that need no Docker: the
template's default_url rule (what a student may land on), the size a layer adds as the build
prints it, and the framework layers' app files (the same in every framework, wired to each
other and to no port of their own)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hub_ext.catalog import rules
from hub_ext.images.build import make_size_note

FRAMEWORKS = Path(__file__).resolve().parent.parent / "images" / "frameworks"
MiB = 2**20


@pytest.mark.parametrize("url", ["/lab", "/lab/tree", "/lab/tree/README.md", "/lab/tree/intro-python/01 x.ipynb"
                                 .replace(" ", "-"), "/lab/tree/.config", "/vscode", "/vscode/", "/tensorboard",
                                 "/tensorboard/"])
def test_default_url_accepts_jupyterlab_vscode_and_tensorboard(url):
    assert rules.default_url(url) == url


@pytest.mark.parametrize("url", [
    "", "lab", "/", "//evil.example.org", "https://evil.example.org/", "/hub/admin", "/hub/logout",
    "/user/other/lab", "/lab/tree/../../hub/admin", "/lab/tree/..", "/lab/tree/./x", "/lab//tree",
    "/vscode\n", "/vscode/../hub", "/vscode?folder=/etc", "/tensorboard#x", "/lab/tree/a b", "/vscodex",
    "/lab/tree/" + "a" * 200, "/proxy/8080/", "/lab\x00", 7, None, ["/lab"],
])
def test_default_url_refuses_anything_else_with_a_sentence_naming_the_allowed_pages(url):
    with pytest.raises(rules.RuleError) as refused:
        rules.default_url(url)
    message = str(refused.value)
    assert message.startswith("got ")
    assert "/lab" in message and "/vscode" in message and "/tensorboard" in message


def test_a_template_with_default_url_vscode_loads_and_a_hostile_one_names_the_field(tmp_path):
    from hub_ext.catalog.model import CatalogError, load_catalog

    template = ("id: c\ntitle: C\naccess: everyone\ntemplates:\n  - id: c-cpu\n    title: C\n"
                "    image: goldenhub/course-intro-python:latest\n    gpus: 0\n    cpu: 1\n    memory: 512M\n"
                "    default_url: {url}\n")
    (tmp_path / "c.yaml").write_text(template.format(url="/vscode"))
    assert load_catalog(tmp_path).templates["c-cpu"].default_url == "/vscode"
    (tmp_path / "c.yaml").write_text(template.format(url="/hub/admin"))
    with pytest.raises(CatalogError) as refused:
        load_catalog(tmp_path)
    assert "default_url" in str(refused.value) and "'/hub/admin'" in str(refused.value)


@pytest.mark.parametrize("size, parent, note", [
    (1200 * MiB, 800 * MiB, "adds 400 MiB (1.2 GiB in all)"),
    (800 * MiB, 199 * MiB, "adds 601 MiB (800 MiB in all)"),
    (800 * MiB + 512, 800 * MiB, "adds 512 B (800 MiB in all)"),
    (800 * MiB, 800 * MiB, "adds 0 B (800 MiB in all)"),
    (700 * MiB, 800 * MiB, "adds 0 B (700 MiB in all)"),  # a layer that deletes never "adds" a negative size
    (3 * 2**30, None, "3 GiB in all"),  # the parent's size unknown: the total alone
    (None, 800 * MiB, ""),  # the engine said nothing: no figure rather than a wrong one
])
def test_the_size_a_layer_adds_is_its_image_less_its_parent(size, parent, note):
    assert make_size_note(size, parent) == note


def _files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _apps_lines(dockerfile: Path) -> str:
    text = dockerfile.read_text()
    return text[text.index("# VS Code and TensorBoard in the browser"):]


def test_every_framework_has_the_same_apps_files_and_dockerfile_lines():
    frameworks = sorted(p for p in FRAMEWORKS.iterdir() if (p / "Dockerfile").is_file())
    assert [p.name for p in frameworks] == ["pytorch", "scipy"]
    first = frameworks[0]
    for other in frameworks[1:]:
        assert _files(other / "apps") == _files(first / "apps"), f"{other.name}/apps differs from {first.name}/apps"
        assert _apps_lines(other / "Dockerfile") == _apps_lines(first / "Dockerfile")


def test_the_apps_listen_on_no_port_of_their_own_and_use_the_images_python():
    apps = FRAMEWORKS / "scipy" / "apps"
    servers = json.loads((apps / "goldenhub-apps.json").read_text())["ServerProxy"]["servers"]
    assert sorted(servers) == ["tensorboard", "vscode"]
    assert {s["launcher_entry"]["title"] for s in servers.values()} == {"VS Code", "TensorBoard"}
    for server in servers.values():
        icon = Path(server["launcher_entry"]["icon_path"])
        assert icon.parent == Path("/opt/goldenhub-apps") and (apps / icon.name).is_file()
        assert Path(server["command"][0]).parent == Path("/opt/goldenhub-apps")
        assert (apps / Path(server["command"][0]).name).stat().st_mode & 0o111
    # VS Code: the socket jupyter-server-proxy gives it, no auth of its own (the Jupyter server's covers it)
    assert servers["vscode"]["unix_socket"] is True and servers["vscode"]["command"][1:] == ["{unix_socket}"]
    code_server = (apps / "goldenhub-code-server").read_text()
    assert re.search(r"--auth none --socket \"\$socket\" --socket-mode 600", code_server)
    assert "--port" not in code_server and "--bind-addr" not in code_server
    # TensorBoard: loopback inside the container only, the conventional folder in the home
    tensorboard = (apps / "goldenhub-tensorboard").read_text()
    assert '--host 127.0.0.1 --port "$port"' in tensorboard and 'logdir="$HOME/tensorboard-logs"' in tensorboard
    settings = json.loads((apps / "code-server-settings.json").read_text())
    assert settings["python.defaultInterpreterPath"] == "/opt/jupyter/bin/python"
