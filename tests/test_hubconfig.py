"""The hub's configuration appliers, each on a plain traitlets Config (as TLJH tests its
configurer): they only write configuration, so none of them needs Docker, a state
directory or the environment. The setup steps (ensure_*) and the refusal of DockerSpawner
settings that GoldenSpawner would ignore are tested here too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from hub_ext import contract
from hub_ext.hubconfig import (GOLDENHUB_SCOPES, Settings, apply_all, check_spawner_config, ensure_state,
                               refused_spawner_settings, update_auth, update_branding, update_hub, update_service,
                               update_spawner)
from hub_ext.paths import REPO_ROOT
from tests.helpers import HUB_PORT, PREFIX, copy_courses

SECRETS = {"student_password": "student-pw", "admin_password": "a" * 44}


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings as the setup steps leave them, on a state directory that does not exist
    (an applier that wrote to disk would create it) and a Docker that cannot be reached."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return Settings(state_dir=tmp_path / "state", courses_dir=tmp_path / "courses", secrets=dict(SECRETS),
                    gateway="172.31.0.1", admin_users=("root", "ops"), auth="demo")


def test_update_hub_keeps_the_hub_state_in_the_state_dir_and_the_proxy_api_on_loopback(settings):
    c = Config()
    update_hub(c, settings)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.db_url == f"sqlite:///{settings.state_dir / 'jupyterhub.sqlite'}"
    assert c.JupyterHub.cookie_secret_file == str(settings.state_dir / "jupyterhub_cookie_secret")
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert c.JupyterHub.cleanup_servers is False  # a hub restart leaves students' servers running


def test_demo_mode_logs_in_with_the_generated_shared_passwords(settings):
    c = Config()
    update_auth(c, settings)
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "student-pw"
    assert c.SharedPasswordAuthenticator.admin_password == SECRETS["admin_password"]
    assert c.Authenticator.admin_users == {"root", "ops"}


def test_update_auth_without_the_setup_step_says_which_step_is_missing(settings):
    settings.secrets = {}
    with pytest.raises(RuntimeError, match=r"call ensure_state\(settings\) before the appliers"):
        update_auth(Config(), settings)


def test_update_spawner_points_the_hub_at_the_network_gateway_without_docker(settings):
    c = Config()
    update_spawner(c, settings)  # Docker is unreachable here: the applier must not call it
    assert c.JupyterHub.hub_ip == "172.31.0.1"
    assert c.GoldenSpawner.host_gateway == "172.31.0.1"
    assert c.JupyterHub.spawner_class == "golden"
    assert c.GoldenSpawner.network_name == "goldenhub"
    assert c.GoldenSpawner.name_prefix == "goldenhub"
    assert c.GoldenSpawner.catalog_db_url == settings.db_url
    assert c.GoldenSpawner.courses_dir == str(settings.courses_dir)


def test_update_spawner_without_the_network_step_says_which_step_is_missing(settings):
    settings.gateway = ""
    with pytest.raises(RuntimeError, match=r"call ensure_network\(settings\)"):
        update_spawner(Config(), settings)


def test_update_branding_serves_the_logo_from_the_state_dir(settings):
    c = Config()
    update_branding(c, settings)
    # Added to what other config gives (lazy values: JupyterHub applies them to its defaults).
    (route, _handler, kwargs), = c.JupyterHub.extra_handlers.get_value([])
    assert "logo|favicon" in route and kwargs == {"state_dir": str(settings.state_dir)}
    assert c.JupyterHub.template_paths.get_value(["jupyterhub's"])[-1] == "jupyterhub's"
    versions = c.JupyterHub.template_vars.get_value({})["goldenhub_branding"]  # read at each page
    assert set(versions()) == {"logo", "favicon", "favicon_type"}


def test_update_service_passes_the_database_by_file_never_its_url(settings):
    settings.db_url = "postgresql+psycopg://goldenhub:s3cret@db/goldenhub"
    settings.db_url_file = Path("/srv/state/goldenhub-db-url")
    settings.service_env = {"DOCKER_HOST": "tcp://docker:2375"}
    c = Config()
    update_service(c, settings)
    service, = c.JupyterHub.services
    assert service["url"] == "http://127.0.0.1:8090"  # loopback: only the proxy reaches it
    assert service["environment"]["GOLDENHUB_DB_URL_FILE"] == "/srv/state/goldenhub-db-url"
    assert service["environment"]["DOCKER_HOST"] == "tcp://docker:2375"
    assert "s3cret" not in repr(service)  # the hub stores a service's environment in its database
    assert c.JupyterHub.custom_scopes == GOLDENHUB_SCOPES
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["goldenhub-admin"]["users"] == ["root", "ops"]
    assert "list:users" in roles["goldenhub-service"]["scopes"]  # the admin page lists every student


def test_settings_pass_on_only_the_named_variables(tmp_path):
    s = Settings.from_env({"GOLDENHUB_STATE_DIR": str(tmp_path), "DOCKER_HOST": "unix:///d.sock",
                           contract.HELPER_IMAGE_ENV: "helper:1", "AWS_SECRET_ACCESS_KEY": "x"})
    assert s.service_env == {"DOCKER_HOST": "unix:///d.sock", contract.HELPER_IMAGE_ENV: "helper:1"}


def test_apply_all_writes_nothing_to_disk(settings):
    c = Config()
    apply_all(c, settings)
    assert not settings.state_dir.exists()
    assert c.JupyterHub.spawner_class == "golden" and c.JupyterHub.services


def test_ensure_state_makes_the_passwords_the_appliers_use(tmp_path):
    s = Settings(state_dir=tmp_path / "state", auth="demo")
    secrets = ensure_state(s)
    assert s.secrets == secrets and len(secrets["admin_password"]) >= 32
    assert (s.state_dir.stat().st_mode & 0o777) == 0o700
    assert ensure_state(Settings(state_dir=s.state_dir)) == secrets  # idempotent: the same passwords
    c = Config()
    update_auth(c, s)
    assert c.SharedPasswordAuthenticator.user_password == secrets["student_password"]


# --- DockerSpawner settings GoldenSpawner does not use ------------------------------------------

def golden_config() -> Config:
    c = Config()
    c.JupyterHub.spawner_class = "golden"
    return c


def test_volumes_set_on_goldenspawner_are_refused_with_the_reason():
    c = golden_config()
    c.GoldenSpawner.volumes = {"/srv/data": "/data"}
    with pytest.raises(SystemExit) as stopped:
        check_spawner_config(c)
    assert ("c.GoldenSpawner.volumes is not used by goldenhub: environment templates set the image, CPU, "
            "memory, GPUs and mounts") in str(stopped.value.code)


@pytest.mark.parametrize("section,name,value", [
    ("DockerSpawner", "extra_host_config", {"privileged": True}),
    ("DockerSpawner", "extra_create_kwargs", {"user": "root"}),
    ("GoldenSpawner", "mounts", [{"source": "/", "target": "/host"}]),
    ("Spawner", "mem_limit", "8G"),
    ("GoldenSpawner", "cpu_limit", 4.0),
    ("DockerSpawner", "image", "jupyter/base-notebook"),
    ("GoldenSpawner", "read_only_volumes", {"/srv": "/srv"}),
    ("DockerSpawner", "name_template", "{prefix}-{username}"),
])
def test_each_ignored_setting_is_named(section, name, value):
    c = golden_config()
    c[section][name] = value
    refused, = refused_spawner_settings(c)
    assert refused.startswith(f"c.{section}.{name} is not used by goldenhub")


def test_settings_goldenspawner_honours_are_accepted():
    c = golden_config()
    c.GoldenSpawner.pull_policy = "always"
    c.GoldenSpawner.environment = {"TZ": "Europe/Paris"}
    c.GoldenSpawner.gpu_inventory = ["0"]
    c.DockerSpawner.remove = True
    c.Spawner.http_timeout = 120
    assert refused_spawner_settings(c) == []
    check_spawner_config(c)


def test_another_spawner_keeps_its_own_settings():
    c = Config()
    c.JupyterHub.spawner_class = "docker"  # the benchmark's stock side
    c.DockerSpawner.image = "goldenhub/course-intro-python:latest"
    assert refused_spawner_settings(c) == []


@pytest.mark.integration
def test_the_hub_refuses_to_start_with_goldenspawner_volumes(tmp_path):
    """The real jupyterhub_config.py, with a site's extra config that mounts a host path."""
    extra = tmp_path / "site_config.py"
    extra.write_text("c.GoldenSpawner.volumes = {'/srv/shared': '/home/jovyan/shared'}\n")
    port = HUB_PORT + 90
    env = dict(os.environ, GOLDENHUB_STATE_DIR=str(tmp_path / "state"),
               GOLDENHUB_COURSES_DIR=str(copy_courses(tmp_path / "courses")),
               GOLDENHUB_BIND_URL=f"http://127.0.0.1:{port}", GOLDENHUB_HUB_PORT=str(port + 1),
               GOLDENHUB_PROXY_API_PORT=str(port + 2), GOLDENHUB_SERVICE_PORT=str(port + 3),
               GOLDENHUB_PREFIX=f"{PREFIX}cf", GOLDENHUB_EXTRA_CONFIG=str(extra))
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    hub = subprocess.run([str(jupyterhub), "-f", str(REPO_ROOT / "jupyterhub_config.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    print(hub.stderr[-3000:])
    assert hub.returncode != 0
    assert ("c.GoldenSpawner.volumes is not used by goldenhub: environment templates set the image, CPU, "
            "memory, GPUs and mounts") in hub.stderr
    assert "Traceback" not in hub.stderr  # a sentence for the admin, not a stack


def test_settings_never_show_the_passwords(settings):
    assert SECRETS["admin_password"] not in repr(settings)


def test_the_mirror_interval_comes_from_the_settings_file_and_reaches_the_spawner(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path))
    (tmp_path / "goldenhub.yaml").write_text("courseware_mirror_interval: 300\n")
    s = Settings.from_env({"GOLDENHUB_STATE_DIR": str(tmp_path)})
    assert s.courseware_mirror_interval == 300
    s.gateway, s.secrets = "172.31.0.1", dict(SECRETS)
    c = Config()
    update_spawner(c, s)
    assert c.GoldenSpawner.courseware_mirror_interval == 300
    off = Settings.from_env({"GOLDENHUB_STATE_DIR": str(tmp_path), "GOLDENHUB_COURSEWARE_MIRROR_INTERVAL": "-1"})
    assert off.courseware_mirror_interval == -1


@pytest.mark.parametrize("bad", ["soon", "nan", "inf", "100000"])
def test_a_bad_mirror_interval_is_refused_naming_what_is_allowed(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"courseware_mirror_interval is .*0\.\.86400.*-1 to turn the mirror off"):
        Settings.from_env({"GOLDENHUB_STATE_DIR": str(tmp_path), "GOLDENHUB_COURSEWARE_MIRROR_INTERVAL": bad})
