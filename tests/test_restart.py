"""A hub restart (even one that changes the naming rules) loses nothing: running servers
keep running, and a student's home stays attached because its name is in spawner state."""

import secrets

import pytest

from tests.helpers import remove_docker_objects, start_hub

pytestmark = pytest.mark.integration

PORT = 18300


def test_restart_with_new_naming_keeps_servers_and_homes(tmp_path, courses_dir):
    state = tmp_path / "state"
    token = secrets.token_hex(16)
    hub = start_hub(state, courses_dir, PORT, "ghrsa", token)
    try:
        hub.spawn("keeper", {"template": "lab-cpu"})
        hub.spawn("runner", {"template": "lab-cpu"})
        assert hub.exec("keeper", "echo precious > ~/work.txt")[0] == 0
        hub.stop("keeper")
        hub.terminate()

        # Same database, different container/volume prefix: a naming change.
        hub = start_hub(state, courses_dir, PORT, "ghrsb", token)
        runner = hub.server("runner")
        assert runner and runner["ready"], "a running server must survive a hub restart"
        r = hub.request("GET", "/users/runner")
        assert r.json()["servers"][""]["ready"]

        hub.spawn("keeper")
        container = hub.container("keeper")  # new naming rule for the new container...
        assert container.name.startswith("ghrsb-")
        assert hub.exec("keeper", "cat ~/work.txt") == (0, "precious\n")  # ...the old home
        assert container.attrs["Config"]["Labels"]["goldenhub.home-volume"].startswith("ghrsa-home-")
    finally:
        for user in ("keeper", "runner"):
            hub.request("DELETE", f"/users/{user}/server")
        hub.terminate()
        remove_docker_objects("ghrsa")
        remove_docker_objects("ghrsb")
