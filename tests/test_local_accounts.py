"""Local accounts without a hub: GoldenLocalAuthenticator's rules on a real password file
(first login sets the password, too short/too long refused with a sentence, nobody claims
an admin account, the failed-login lock, an admin's reset), update_local on a plain
traitlets Config, and `goldenhub up`'s first-run choice of demo mode.

The authenticator's `handler` argument is the one thing not real here: the hub's login
handler, of which authenticate uses find_user (does the account exist?) and the attribute
custom_login_error (the sentence the login page shows). The hub itself is in
test_local_browser.py."""

from __future__ import annotations

import asyncio
import stat

import pytest
from traitlets.config import Config

from hub_ext.accounts.local import MAX_PASSWORD_BYTES, GoldenLocalAuthenticator, LoginThrottle, password_problem
from hub_ext.cli.platform_cmd import ensure_first_run_settings, login_help
from hub_ext.hubconfig import Settings, update_auth

SECRETS = {"student_password": "student-pw", "admin_password": "A" * 44}


class LoginRequest:
    """What authenticate needs of the hub's login handler: the accounts that exist, and
    a place for the sentence the login page shows."""

    def __init__(self, accounts):
        self.accounts = set(accounts)
        self.custom_login_error = ""

    def find_user(self, name):
        return object() if name in self.accounts else None


class Account:
    """The part of a hub user (orm.User) the authenticator's hooks read."""

    def __init__(self, name):
        self.name = name


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def auth(tmp_path):
    a = GoldenLocalAuthenticator(dbm_path=str(tmp_path / "passwords.dbm"), min_password_length=8,
                                 seed_passwords={"admin": SECRETS["admin_password"]}, admin_users={"admin"})
    a.throttle.clock = Clock()
    for name in ("alice", "bob"):  # as the hub does at start, and when a roster creates an account
        asyncio.run(a.add_user(Account(name)))
    return a


def login(auth, name, password, accounts=("alice", "bob", "admin")):
    request = LoginRequest(accounts)
    result = asyncio.run(auth.get_authenticated_user(request, {"username": name, "password": password}))
    return (result or {}).get("name"), request.custom_login_error


def test_the_first_login_sets_the_password_and_only_it_works_afterwards(auth):
    assert login(auth, "alice", "correct horse") == ("alice", "")
    assert login(auth, "alice", "correct horse") == ("alice", "")
    assert login(auth, "alice", "something else")[0] is None
    assert login(auth, "Alice", "correct horse")[0] == "alice"  # names are normalised, as the hub does
    assert login(auth, "bob", "other password")[0] == "bob"  # each account its own


def test_a_too_short_first_password_is_refused_with_the_minimum_and_nothing_is_stored(auth):
    name, error = login(auth, "alice", "short")
    assert name is None
    assert "at least 8 characters" in error and "becomes its password" in error
    assert asyncio.run(auth.stored_hash("alice")) is None
    assert login(auth, "alice", "long enough")[0] == "alice"


def test_a_password_bcrypt_cannot_hash_is_refused_with_a_sentence_never_an_error(auth):
    too_long = "é" * 40  # 80 bytes: bcrypt 5 raises on anything over 72
    name, error = login(auth, "alice", too_long)
    assert name is None and f"at most {MAX_PASSWORD_BYTES} bytes" in error
    login(auth, "alice", "x" * 72)
    assert login(auth, "alice", "x" * 73)[0] is None  # no match and no exception
    assert login(auth, "alice", "x" * 72)[0] == "alice"


def test_only_accounts_that_exist_in_the_hub_log_in(auth):
    assert login(auth, "mallory", "any password at all") == (None, "")
    assert asyncio.run(auth.stored_hash("mallory")) is None


def test_nobody_claims_the_admin_account_at_first_login(auth):
    auth.allowed_users.add("admin")  # an admin account whose seed is not stored (yet)
    name, _ = login(auth, "admin", "i-was-here-first")
    assert name is None
    assert asyncio.run(auth.stored_hash("admin")) is None  # the attempt stored nothing
    assert login(auth, "admin", SECRETS["admin_password"])[0] == "admin"
    assert login(auth, "admin", "i-was-here-first")[0] is None


def test_the_admin_password_is_seeded_when_the_hub_adds_the_admin(auth):
    asyncio.run(auth.add_user(Account("admin")))
    assert asyncio.run(auth.stored_hash("admin")) is not None
    assert login(auth, "admin", SECRETS["admin_password"])[0] == "admin"


def test_the_password_file_is_private(auth, tmp_path):
    login(auth, "alice", "correct horse")
    files = list(tmp_path.glob("passwords.dbm*"))
    assert files
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f


def test_five_failures_lock_the_account_even_against_the_right_password_until_the_time_given(auth):
    login(auth, "alice", "correct horse")
    for _ in range(4):
        assert login(auth, "alice", "guess") == (None, "")
    name, error = login(auth, "alice", "guess")
    assert name is None and "Too many failed logins for alice" in error and "UTC" in error
    name, error = login(auth, "alice", "correct horse")
    assert name is None and "locked until" in error
    assert login(auth, "bob", "bob's password")[0] == "bob"  # per account
    auth.throttle.clock.now += auth.lockout_seconds
    assert login(auth, "alice", "correct horse") == ("alice", "")


def test_a_success_starts_the_count_again(auth):
    login(auth, "alice", "correct horse")
    for _ in range(4):
        login(auth, "alice", "guess")
    assert login(auth, "alice", "correct horse")[0] == "alice"
    for _ in range(4):
        assert login(auth, "alice", "guess") == (None, "")
    assert login(auth, "alice", "correct horse")[0] == "alice"


def test_the_throttle_message_says_when_to_retry():
    clock = Clock(1_800_000_000.0)  # 2027-01-15 08:00 UTC
    throttle = LoginThrottle(max_failures=2, lock_seconds=300, clock=clock)
    assert throttle.failed("a") is None
    until = throttle.failed("a")
    assert until == clock.now + 300
    assert "locked until 08:05 UTC (about 5 minutes)" in throttle.message("a", until)


def test_a_reset_forgets_the_password_and_lifts_the_lock(auth):
    login(auth, "alice", "correct horse")
    for _ in range(5):
        login(auth, "alice", "guess")
    assert asyncio.run(auth.forget_password("alice")) is True
    name, error = login(auth, "alice", "correct horse")  # whoever knew the old one cannot claim it
    assert name is None and "from before the administrator's reset" in error
    assert login(auth, "alice", "a new password") == ("alice", "")
    assert login(auth, "alice", "correct horse")[0] is None
    assert asyncio.run(auth.forget_password("nobody")) is False


def test_change_password_asks_for_the_current_one(auth):
    login(auth, "alice", "correct horse")
    changed, message = asyncio.run(auth.change_password("alice", "wrong", "brand new pw"))
    assert not changed and "current password is not right" in message
    changed, message = asyncio.run(auth.change_password("alice", "correct horse", "short"))
    assert not changed and "at least 8 characters" in message and "Nothing changed" in message
    assert login(auth, "alice", "correct horse")[0] == "alice"
    changed, _ = asyncio.run(auth.change_password("alice", "correct horse", "brand new pw"))
    assert changed
    assert login(auth, "alice", "brand new pw")[0] == "alice"
    assert login(auth, "alice", "correct horse")[0] is None


def test_deleting_a_user_forgets_their_password(auth):
    login(auth, "alice", "correct horse")
    asyncio.run(auth.forget_password("alice"))
    login(auth, "alice", "second password")
    asyncio.run(auth.forget_password("alice"))
    asyncio.run(auth.delete_user(Account("alice")))
    assert asyncio.run(auth.stored_hash("alice")) is None
    assert asyncio.run(auth.stored_hash("/retired/alice")) is None


def test_password_problem_sentences():
    assert password_problem("12345678", 8) is None
    assert "at least 10" in password_problem("12345678", 10)
    assert "at most 72 bytes" in password_problem("x" * 73, 8)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path / "state", courses_dir=tmp_path / "courses", secrets=dict(SECRETS),
                    admin_users=("root", "ops"), auth="local", min_password_length=10)


def test_update_local_configures_roster_accounts_with_seeded_admin_passwords(settings):
    c = Config()
    update_auth(c, settings)
    assert c.JupyterHub.authenticator_class is GoldenLocalAuthenticator
    assert c.GoldenLocalAuthenticator.dbm_path == str(settings.state_dir / "passwords.dbm")
    assert c.GoldenLocalAuthenticator.min_password_length == 10
    assert c.GoldenLocalAuthenticator.create_users is False
    assert c.Authenticator.allow_all is False and c.Authenticator.allow_existing_users is True
    assert c.Authenticator.admin_users == {"root", "ops"}
    assert c.GoldenLocalAuthenticator.seed_passwords == {"root": SECRETS["admin_password"],
                                                         "ops": SECRETS["admin_password"]}
    template_vars = c.JupyterHub.template_vars.get_value({})
    assert template_vars["goldenhub_min_password_length"] == 10 and template_vars["goldenhub_auth"] == "local"
    paths = [h[0] for h in c.JupyterHub.extra_handlers.get_value([])]
    assert r"/api/goldenhub/password-reset/([^/]+)" in paths
    assert not settings.state_dir.exists()  # an applier writes no file


def test_authenticator_defaults_refuse_unknown_names_even_without_config(tmp_path):
    a = GoldenLocalAuthenticator(dbm_path=str(tmp_path / "p.dbm"))
    assert a.create_users is False and a.allow_all is False and a.allow_existing_users is True


# --- `goldenhub up`: the first run chooses demo mode ---------------------------------------------

def test_the_first_up_writes_demo_mode_privately_and_never_again(tmp_path):
    state = tmp_path / "state"
    assert ensure_first_run_settings(state, env={}) is True
    path = state / "goldenhub.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "auth: demo" in text and "local" in text and "lti" in text  # says how to switch
    path.write_text("auth: local\n")
    assert ensure_first_run_settings(state, env={}) is False
    assert path.read_text() == "auth: local\n"  # an admin's choice is kept


def test_up_with_goldenhub_auth_set_writes_no_file(tmp_path):
    assert ensure_first_run_settings(tmp_path, env={"GOLDENHUB_AUTH": "local"}) is False
    assert not (tmp_path / "goldenhub.yaml").exists()


def test_settings_file_written_by_the_first_up_selects_demo(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GOLDENHUB_AUTH", raising=False)
    assert Settings.from_env().auth == "local"  # no file: local, as plain `jupyterhub -f` starts
    ensure_first_run_settings(tmp_path, env={})
    assert Settings.from_env().auth == "demo"


def test_up_prints_per_mode_what_people_need(settings):
    demo = login_help(Settings(**{**settings.__dict__, "auth": "demo"}), SECRETS)
    assert "student-pw" in demo and "WARNING" in demo and "auth: local" in demo
    local = login_help(settings, SECRETS)
    assert "goldenhub enrol" in local and "at least 10 characters" in local and "root, ops" in local
    assert "student-pw" not in local
