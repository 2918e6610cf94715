"""Operating the platform without a hub: HTTPS settings (update_hub and their refusals), the
systemd unit (verified by systemd-analyze), the self-signed pair, and `goldenhub down` /
`status` on pid files that are stale or name another program."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest
from traitlets.config import Config

from hub_ext.hubconfig import Settings, update_hub
from tests.helpers import PREFIX, goldenhub


def test_update_hub_serves_https_with_the_configured_pair(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    s = Settings.from_env({"GOLDENHUB_STATE_DIR": str(tmp_path), "GOLDENHUB_BIND_URL": "https://0.0.0.0:8443",
                           "GOLDENHUB_SSL_CERT": str(cert), "GOLDENHUB_SSL_KEY": str(key)})
    c = Config()
    update_hub(c, s)
    assert (c.JupyterHub.bind_url, c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == \
        ("https://0.0.0.0:8443", str(cert), str(key))
    plain = Config()
    update_hub(plain, Settings.from_env({}))
    assert "ssl_cert" not in plain.JupyterHub and "ssl_key" not in plain.JupyterHub


def test_https_files_from_the_settings_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path))
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "k.pem").write_text("key")
    (tmp_path / "goldenhub.yaml").write_text(f"auth: local\nssl_cert: {tmp_path}/c.pem\nssl_key: {tmp_path}/k.pem\n")
    s = Settings.from_env({"GOLDENHUB_BIND_URL": "https://127.0.0.1:9443"})
    assert (s.ssl_cert, s.ssl_key) == (f"{tmp_path}/c.pem", f"{tmp_path}/k.pem")


@pytest.mark.parametrize("env, sentence", [
    ({"GOLDENHUB_SSL_CERT": "{d}/c.pem"}, "only one is set"),
    ({"GOLDENHUB_SSL_CERT": "{d}/c.pem", "GOLDENHUB_SSL_KEY": "{d}/missing.pem"}, "missing.pem does not exist"),
    ({"GOLDENHUB_SSL_CERT": "{d}", "GOLDENHUB_SSL_KEY": "{d}/k.pem"}, "does not exist"),
    ({"GOLDENHUB_SSL_CERT": "{d}/c.pem", "GOLDENHUB_SSL_KEY": "{d}/k.pem", "GOLDENHUB_BIND_URL": "http://0.0.0.0:80"},
     "use https://"),
    ({"GOLDENHUB_BIND_URL": "https://0.0.0.0:443"}, "no certificate is set"),
])
def test_https_settings_that_cannot_work_are_refused_with_a_sentence(tmp_path, env, sentence):
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "k.pem").write_text("key")
    env = {"GOLDENHUB_STATE_DIR": str(tmp_path), "GOLDENHUB_BIND_URL": "https://0.0.0.0:443",
           **{k: v.format(d=tmp_path) for k, v in env.items()}}
    with pytest.raises(ValueError, match=sentence):
        Settings.from_env(env)


def test_install_service_writes_a_unit_that_systemd_verifies(tmp_path):
    unit = tmp_path / "goldenhub.service"
    result = goldenhub("install-service", "--output", str(unit), "--user", "root")
    assert result.returncode == 0
    assert "systemctl daemon-reload && systemctl enable --now goldenhub" in result.stdout
    text = unit.read_text()
    exec_start = f"{os.path.dirname(sys.executable)}/goldenhub up"
    for line in ("Type=simple", "Restart=on-failure", "EnvironmentFile=-/etc/goldenhub.env", "User=root",
                 f"ExecStart={exec_start}", "After=network-online.target docker.service",
                 "Wants=network-online.target docker.service", "WantedBy=multi-user.target"):
        assert line in text.splitlines(), line
    assert f"WorkingDirectory={os.getcwd()}" in text.splitlines()
    verify = subprocess.run(["/usr/bin/systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    problems = [line for line in (verify.stdout + verify.stderr).splitlines() if unit.name in line]
    assert verify.returncode == 0 and not problems, verify.stdout + verify.stderr


def test_systemd_analyze_rejects_a_broken_unit(tmp_path):
    """The verification above can fail: a unit whose ExecStart does not exist is refused."""
    unit = tmp_path / "goldenhub.service"
    goldenhub("install-service", "--output", str(unit))
    unit.write_text(unit.read_text().replace(f"{os.path.dirname(sys.executable)}/goldenhub", "/nonexistent/goldenhub"))
    verify = subprocess.run(["/usr/bin/systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                            timeout=120)
    assert verify.returncode != 0 and "/nonexistent/goldenhub is not executable" in verify.stderr


@pytest.mark.parametrize("user", ["Root", "a b", "x" * 40, "root\nExecStartPre=/bin/sh"])
def test_install_service_refuses_a_bad_user_name_and_writes_nothing(tmp_path, user):
    unit = tmp_path / "goldenhub.service"
    result = goldenhub("install-service", "--output", str(unit), f"--user={user}")
    assert result.returncode == 2 and "is not a user name" in result.stderr and "Nothing was written" in result.stderr
    assert not unit.exists()


def test_install_service_into_a_missing_directory_says_so(tmp_path):
    result = goldenhub("install-service", "--output", str(tmp_path / "no" / "goldenhub.service"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_tls_self_signed_writes_a_private_key_and_a_certificate_for_the_host(tmp_path):
    from cryptography import x509

    env = {"GOLDENHUB_STATE_DIR": str(tmp_path)}
    result = goldenhub("tls", "self-signed", "--host", "hub.example.edu", env=env)
    assert result.returncode == 0
    key, cert = tmp_path / "tls" / "goldenhub.key", tmp_path / "tls" / "goldenhub.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"GOLDENHUB_SSL_CERT={cert}" in result.stdout and f"GOLDENHUB_SSL_KEY={key}" in result.stdout
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "hub.example.edu" in names.get_values_for_type(x509.DNSName)
    before = key.read_bytes()
    again = goldenhub("tls", "self-signed", env=env)
    assert again.returncode == 1 and "--force" in again.stderr and key.read_bytes() == before
    assert goldenhub("tls", "self-signed", "--force", env=env).returncode == 0 and key.read_bytes() != before


@pytest.mark.parametrize("host", ["-bad", "a" * 300, "hub example", "hub.example.edu/x", "ü.example"])
def test_tls_self_signed_refuses_a_bad_host_and_writes_nothing(tmp_path, host):
    result = goldenhub("tls", "self-signed", f"--host={host}", env={"GOLDENHUB_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2 and "is not a host name" in result.stderr
    assert not (tmp_path / "tls").exists()


def test_down_cleans_stale_pid_files_and_never_signals_another_program(tmp_path):
    """A pid file naming a dead process is removed; one naming a live process of another
    program is removed too, and that process keeps running."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    other = subprocess.Popen(["sleep", "300"])
    try:
        (tmp_path / "git").mkdir()
        (tmp_path / "jupyterhub.pid").write_text(str(dead.pid))
        (tmp_path / "jupyterhub-proxy.pid").write_text(str(other.pid))
        (tmp_path / "git" / "git-daemon.pid").write_text(f"{other.pid}\n")
        env = {"GOLDENHUB_STATE_DIR": str(tmp_path), "GOLDENHUB_PREFIX": f"{PREFIX}ops"}
        status = goldenhub("status", env=env)
        assert status.returncode == 3 and "hub:                not running" in status.stdout
        assert (tmp_path / "jupyterhub.pid").exists()  # status changes nothing
        result = goldenhub("down", env=env)
        assert result.returncode == 0
        assert f"pid {dead.pid} is not running" in result.stdout
        assert f"pid {other.pid} is another program, left running" in result.stdout
        assert "nothing of goldenhub was running" in result.stdout
        assert other.poll() is None
        assert not any((tmp_path / f).exists() for f in ("jupyterhub.pid", "jupyterhub-proxy.pid", "git/git-daemon.pid"))
        again = goldenhub("down", env=env)
        assert again.returncode == 0 and again.stdout.strip().endswith(f"(state directory {tmp_path})")
    finally:
        other.kill()
        other.wait()


def test_prepare_refuses_a_bad_git_port(tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    result = subprocess.run([sys.executable, "-m", "hub_ext.cli", "prepare"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "GOLDENHUB_STATE_DIR": str(tmp_path),
                                              "GOLDENHUB_GIT_PORT": "99999"})
    assert result.returncode != 0 and "must be a port number" in result.stderr
