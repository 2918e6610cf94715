"""SSH and SFTP into one's own environment (hub_ext.ssh), with Debian's real ssh and sftp
clients (openssh-client) and sshpass handing them the hub token as the password.

Pure tests: the exec parser, the settings, the host key. Integration tests: the session
`hub` (its SSH service on HUB_PORT + 27), a student's server in Docker."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from hub_ext.ssh import config as ssh_config
from hub_ext.ssh.shell import ExecOutput, exec_line
from tests.helpers import HUB_PORT, PREFIX, copy_courses, hub_running, user_token, wait_for

SSH_PORT = HUB_PORT + 27  # start_hub gives each test hub port + 27
STUDENT, OTHER = "sshana", "sshben"
TEMPLATE = {"template": "lab-cpu"}
CLIENT_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                  "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                  "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=20"]


def ssh(user: str, token: str, *command: str, port: int = SSH_PORT,
        timeout: float = 400) -> subprocess.CompletedProcess:
    """The real ssh client as USER with TOKEN as the password."""
    return subprocess.run(["sshpass", "-e", "ssh", "-p", str(port), *CLIENT_OPTIONS, f"{user}@127.0.0.1", *command],
                          env={**os.environ, "SSHPASS": token}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def sftp(user: str, token: str, batch: str, tmp: Path) -> subprocess.CompletedProcess:
    """The real sftp client running BATCH; -b would turn password logins off (BatchMode),
    so BatchMode=no comes first, and the batch is a file (sshpass owns the terminal)."""
    script = tmp / "batch.sftp"
    script.write_text(batch)
    return subprocess.run(["sshpass", "-e", "sftp", "-P", str(SSH_PORT), "-o", "BatchMode=no", *CLIENT_OPTIONS,
                           "-b", str(script), f"{user}@127.0.0.1"], env={**os.environ, "SSHPASS": token},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=400)


# --- pure -----------------------------------------------------------------------------------


def test_a_commands_output_and_status_are_picked_out_of_the_terminal_stream():
    parser = ExecOutput(pty=False)
    stream = ["jovyan@c:~$ ", exec_line("whoami"), "\r\n", "\x1eGHB", "\x1ejovyan\r\nline 2\r\n\x1e", "GHE3\x1e",
              "exit\r\n"]
    out = "".join(parser.feed(part) for part in stream)
    assert out == "jovyan\nline 2\n" and parser.status == 3


def test_the_typed_line_never_holds_the_marker_bytes_whatever_the_command():
    line = exec_line("echo '\x1eGHE0\x1e'; rm -rf \"$HOME\"\nexit")
    assert "\x1e" not in line and "\n" not in line and "rm -rf" not in line


def settings(tmp_path):
    return SimpleNamespace(state_dir=tmp_path, bind_url="http://0.0.0.0:8000", name_prefix="gh", language="en")


@pytest.mark.parametrize("env,file,enabled,port", [
    ({}, {}, True, 8022),
    ({"GOLDENHUB_SSH": "off"}, {}, False, 8022),
    ({}, {"ssh": {"enabled": False, "port": 2222}}, False, 2222),
    ({"GOLDENHUB_SSH_PORT": "2200"}, {"ssh": {"port": 2222}}, True, 2200),
])
def test_ssh_is_on_by_default_and_admins_can_turn_it_off_or_move_it(tmp_path, env, file, enabled, port):
    s = settings(tmp_path)
    ssh_config.read_ssh(s, env, file)
    assert (s.ssh_enabled, s.ssh_port) == (enabled, port)


@pytest.mark.parametrize("env,file,said", [
    ({"GOLDENHUB_SSH": "maybe"}, {}, "allowed: on or off"),
    ({"GOLDENHUB_SSH_PORT": "70000"}, {}, "from 1 to 65535"),
    ({}, {"ssh": {"port": "twenty"}}, "give a port number"),
    ({}, {"ssh": "on"}, "write it as ssh:"),
])
def test_a_wrong_ssh_setting_stops_the_hub_with_what_is_allowed(tmp_path, env, file, said):
    with pytest.raises(ValueError, match=said):
        ssh_config.read_ssh(settings(tmp_path), env, file)


def test_the_service_listens_where_the_hub_does_and_reaches_it_on_loopback(tmp_path):
    s = settings(tmp_path)
    ssh_config.read_ssh(s, {"DOCKER_HOST": "tcp://d:2375"}, {})
    env = ssh_config.make_service_env(s)
    assert env["GOLDENHUB_SSH_HOST"] == "0.0.0.0" and env["GOLDENHUB_SSH_HUB_URL"] == "http://127.0.0.1:8000"
    assert env["DOCKER_HOST"] == "tcp://d:2375"


def test_the_host_key_is_made_once_private_and_kept(tmp_path):
    from hub_ext.ssh.server import ensure_host_key

    key = ensure_host_key(tmp_path)
    first = key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert ensure_host_key(tmp_path).read_bytes() == first


# --- with a real hub, Docker and the real clients -------------------------------------------


@pytest.fixture(scope="module")
def student(hub):
    """STUDENT's token; their server started once on lab-cpu and stopped again, so the hub
    remembers the template and the SSH login has to start it."""
    hub.spawn(STUDENT, TEMPLATE)
    hub.stop(STUDENT)
    return user_token(hub, STUDENT, "ssh")


@pytest.mark.integration
def test_a_students_token_runs_whoami_and_ls_inside_their_own_started_container(hub, student):
    result = ssh(STUDENT, student, "whoami; ls ~; cat /etc/hostname; exit 7")
    assert result.returncode == 7, result.stderr + hub.log_tail()
    whoami, *listing = result.stdout.split("\n")
    assert whoami == "jovyan"
    assert "lab" in listing  # their courseware, in their home
    assert hub.server(STUDENT)["ready"]  # started for them
    assert hub.container(STUDENT).attrs["Config"]["Hostname"] in listing  # their container, not another
    terminals = requests.get(f"{hub.url}/user/{STUDENT}/api/terminals", timeout=30,
                             headers={"Authorization": f"token {student}"})
    assert terminals.json() == []  # the command's terminal went with it


@pytest.mark.integration
def test_an_interactive_shell_runs_in_their_terminal_until_they_leave(hub, student):
    result = subprocess.run(["sshpass", "-e", "ssh", "-tt", "-p", str(SSH_PORT), *CLIENT_OPTIONS,
                             f"{STUDENT}@127.0.0.1"], env={**os.environ, "SSHPASS": student}, capture_output=True,
                            text=True, input="echo answer-$((6*7)) $(id -u)\nexit\n", timeout=400)
    assert "answer-42 1000" in result.stdout, result.stdout + result.stderr


@pytest.mark.integration
def test_a_too_long_command_is_refused_in_the_clients_language_and_not_run(hub, student):
    result = subprocess.run(["sshpass", "-e", "ssh", "-o", "SendEnv=LANG", "-p", str(SSH_PORT), *CLIENT_OPTIONS,
                             f"{STUDENT}@127.0.0.1", "touch ~/too-long #" + "x" * 70000],
                            env={**os.environ, "SSHPASS": student, "LANG": "zh_CN.UTF-8"}, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=400)
    assert result.returncode != 0 and "命令长度超过 64 KiB。" in result.stderr, result.stderr
    assert hub.exec(STUDENT, "test -e ~/too-long")[0] != 0


@pytest.mark.integration
def test_sftp_put_lands_in_the_students_home_as_they_see_it_in_jupyter(hub, student, tmp_path):
    code, _ = hub.exec(STUDENT, "test -x /usr/lib/openssh/sftp-server")
    if code != 0:
        pytest.skip("this image has no /usr/lib/openssh/sftp-server yet (images/base/Dockerfile installs it; "
                    "rebuild the sample images)")
    local = tmp_path / "report.txt"
    local.write_text("sent over sftp\n")
    result = sftp(STUDENT, student, f"put {local} report.txt\nls -l\n", tmp_path)
    assert result.returncode == 0, result.stderr
    r = requests.get(f"{hub.url}/user/{STUDENT}/api/contents/report.txt", params={"content": "1"},
                     headers={"Authorization": f"token {student}"}, timeout=30)
    assert r.status_code == 200 and r.json()["content"] == "sent over sftp\n"
    assert hub.exec(STUDENT, "stat -c %u ~/report.txt")[1].strip() == "1000"


@pytest.mark.integration
def test_another_students_token_or_a_wrong_one_gets_permission_denied_and_starts_nothing(hub, student, tmp_path):
    other = user_token(hub, OTHER, "ssh")
    narrow = user_token(hub, STUDENT, "ssh", scopes=[f"read:users!user={STUDENT}"])  # may not use the server
    for user, token in [(STUDENT, other), (OTHER, student), (STUDENT, student[:-1] + "x"), (STUDENT, ""),
                        (STUDENT, narrow), ("../etc", student)]:
        result = ssh(user, token, "whoami", timeout=60)
        assert result.returncode != 0 and "jovyan" not in result.stdout
        assert "Permission denied" in result.stderr, result.stderr
        result = sftp(user, token, "ls\n", tmp_path)
        assert result.returncode != 0 and "Permission denied" in result.stderr
    assert hub.server(OTHER) is None  # nothing was started for the other student


class Guesser:
    """An SSH client (asyncssh's, for counting only) offering one password after another."""

    def __init__(self, passwords: list[str]):
        import asyncssh

        outer = self

        class Client(asyncssh.SSHClient):
            def password_auth_requested(self):
                outer.offered += 1
                return outer.passwords.pop(0) if outer.passwords else None

        self.passwords, self.offered, self.client = list(passwords), 0, Client


async def connect(user: str, passwords: list[str]):
    import asyncssh

    guesser = Guesser(passwords)
    conn = await asyncssh.connect("127.0.0.1", SSH_PORT, username=user, client_factory=guesser.client,
                                  known_hosts=None, preferred_auth="password", client_keys=None, agent_path=None)
    return conn, guesser


@pytest.mark.integration
def test_logins_are_bounded_per_connection_and_per_user(hub, student):
    import asyncio

    import asyncssh
    from hub_ext.ssh.server import MAX_AUTH_ATTEMPTS, MAX_PER_USER

    async def scenario():
        # a guesser gets MAX_AUTH_ATTEMPTS tries on one connection, the right token too late
        with pytest.raises((asyncssh.PermissionDenied, asyncssh.ConnectionLost, asyncssh.DisconnectError)):
            await connect(STUDENT, ["wrong"] * MAX_AUTH_ATTEMPTS + [student])
        # MAX_PER_USER connections at once, then one more is refused
        open_ = [(await connect(STUDENT, [student]))[0] for _ in range(MAX_PER_USER)]
        try:
            with pytest.raises(asyncssh.PermissionDenied):
                await connect(STUDENT, [student])
        finally:
            for conn in open_:
                conn.close()
                await conn.wait_closed()
        conn, _ = await connect(STUDENT, [student])  # closing one frees its place
        conn.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_with_ssh_turned_off_the_port_does_not_answer(tmp_path):
    port = HUB_PORT + 200
    with hub_running(tmp_path / "state", copy_courses(tmp_path / "courses"), port, f"{PREFIX}x",
                     env={"GOLDENHUB_SSH": "off"}) as off:
        # the services have started once the goldenhub one answers through the proxy
        wait_for(lambda: requests.get(f"{off.url}/services/goldenhub/", timeout=10).status_code < 500, 60,
                 "the goldenhub service answering")
        assert "goldenhub-ssh" not in off.log_path.read_text()  # the SSH service never ran
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port + 27), timeout=10).close()
