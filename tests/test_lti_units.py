"""LTI 1.3 rules without a hub: the role and course mapping, usernames, the replay guard,
the JWKS cache (against the test LMS's real HTTP endpoint, and one that is slow or too
big), and the configuration applier's refusals."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from traitlets.config import Config

from hub_ext import contract
from hub_ext.accounts import lti_launch as rules
from hub_ext.accounts.lti import GoldenLTI13Authenticator, lti_setting_problems, update_lti
from hub_ext.accounts.lti_launch import (KeySet, KeysUnavailable, Launch, LaunchRefused, ReplayGuard,
                                         course_groups_after, fetch_jwks, make_launch, role_of)
from hub_ext.catalog.model import Catalog, Course
from hub_ext.hubconfig import Settings, update_auth
from tests.lms import INSTRUCTOR, LEARNER, LIS, SITE_ADMIN, TA, TestLMS

CLAIM = rules.CLAIM
CATALOG = Catalog({"ml": Course("ml", "ML", "", None, (), lms_contexts=("42", "42-b")),
                   "stats": Course("stats", "Stats", "", None, ())})


def claims(roles=LEARNER, context="42", email="Ana@Example.org", **extra) -> dict:
    data = {"iss": "https://lms.example.org", "sub": "17", "email": email, "name": "Ana Lima",
            CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "roles": roles}
    if context is not None:
        data[CLAIM + "context"] = {"id": context, "label": "ML", "title": "Machine learning"}
    return {**data, **extra}


@pytest.mark.parametrize("roles, role", [
    (LEARNER, "student"),
    (["Learner"], "student"),
    (INSTRUCTOR, "instructor"),
    (["Instructor"], "instructor"),
    (TA, "ta"),
    (["TeachingAssistant"], "ta"),
    (LEARNER + INSTRUCTOR, "instructor"),  # staff wins over Learner
    (LEARNER + TA, "ta"),
    ([LIS + "membership#Instructor"] + TA, "ta"),  # the sub-role is the more exact one
    (SITE_ADMIN, None),  # institution and system roles grant nothing
    ([LIS + "institution/person#Instructor"], None),
    ([LIS + "membership#Mentor"], None),
    ([LIS + "membership#LearnerX", "learner", " Learner"], None),  # whole strings only
    ([], None),
    ("Learner", None),  # not a list
    (["Learner"] * 101, None),  # too many
    ([{"role": "Learner"}], None),
])
def test_role_of_the_roles_claim(roles, role):
    assert role_of(roles) == role


def test_a_learner_of_a_linked_course_comes_in_as_a_student():
    launch = make_launch(claims(), CATALOG, "email", set())
    assert launch == Launch(username="ana@example.org", issuer="https://lms.example.org", context_id="42",
                            course="ml", role="student", display_name="Ana Lima", email="Ana@Example.org")
    assert make_launch(claims(roles=INSTRUCTOR, context="42-b"), CATALOG, "email", set()).role == "instructor"


@pytest.mark.parametrize("data, sentence", [
    (claims(context="99"), rules.NOT_LINKED),
    (claims(context=None), rules.NO_CONTEXT),
    (claims(context="has space"), rules.NO_CONTEXT),
    (claims(roles=SITE_ADMIN), rules.NO_ROLE),
    (claims(roles=[]), rules.NO_ROLE),
    (claims(**{CLAIM + "message_type": "LtiDeepLinkingRequest"}), rules.NOT_RESOURCE_LINK),
    (claims(email="Ana Lima"), rules.BAD_USERNAME),
    (claims(email="../../etc"), rules.BAD_USERNAME),
    (claims(email="a" * 65), rules.BAD_USERNAME),
    (claims(email=["ana"]), rules.BAD_USERNAME),
    ({k: v for k, v in claims().items() if k != "email"}, rules.BAD_USERNAME),  # never falls back to sub
])
def test_refused_launches_say_why(data, sentence):
    with pytest.raises(LaunchRefused) as e:
        make_launch(data, CATALOG, "email", set())
    assert e.value.sentence == sentence and e.value.status in (400, 403)


def test_admins_launch_from_anywhere_and_are_enrolled_only_where_linked():
    admin = {"ana@example.org"}
    assert make_launch(claims(context="99"), CATALOG, "email", admin).course is None
    assert make_launch(claims(context=None), CATALOG, "email", admin).course is None
    assert make_launch(claims(roles=SITE_ADMIN), CATALOG, "email", admin).course is None
    linked = make_launch(claims(roles=SITE_ADMIN + INSTRUCTOR), CATALOG, "email", admin)
    assert (linked.course, linked.role) == ("ml", "instructor")


def test_username_key_custom_and_details_cleaned():
    data = claims(**{CLAIM + "custom": {"uname": "Bo.Lee"}}, name="Bo\x00 Lee\n", email="not an email")
    launch = make_launch(data, CATALOG, "custom_uname", set())
    assert (launch.username, launch.display_name, launch.email) == ("bo.lee", "Bo Lee", "")
    assert make_launch(claims(), CATALOG, "sub", set()).username == "17"


def test_a_launch_changes_only_this_courses_groups():
    ml, ml_staff = contract.course_group("ml"), contract.staff_group("ml")
    other = {contract.course_group("stats"), contract.staff_group("bio"), "sec-students"}
    assert course_groups_after(other | {ml_staff}, "ml", "student") == other | {ml}
    assert course_groups_after(other | {ml}, "ml", "ta") == other | {ml_staff}
    assert course_groups_after(set(), "ml", "instructor") == {ml_staff}


def test_replay_guard_refuses_a_second_use_until_the_token_is_dead():
    now = [1000.0]
    guard = ReplayGuard(capacity=2, clock=lambda: now[0])
    assert guard.accept("iss", "n1", 1600)
    assert not guard.accept("iss", "n1", 1600)
    assert guard.accept("other-iss", "n1", 1600)  # per issuer
    with pytest.raises(LaunchRefused) as e:  # full: refused, nothing forgotten early
        guard.accept("iss", "n2", 1600)
    assert e.value.status == 503 and e.value.sentence == rules.BUSY
    now[0] = 1601  # both dead: room again, and n1 is useless anyway (its token expired)
    assert guard.accept("iss", "n2", 2200)
    assert len(guard.seen) == 1


# --- the JWKS cache -------------------------------------------------------------------------------


class CountingFetch:
    def __init__(self, keys):
        self.keys, self.calls, self.fail = keys, 0, False

    def __call__(self):
        self.calls += 1
        if self.fail:
            raise KeysUnavailable("down")
        return dict(self.keys)


@pytest.fixture(scope="module")
def lms():
    platform = TestLMS()
    yield platform
    platform.stop()


def test_keys_come_from_the_lms_jwks_endpoint(lms):
    keys = fetch_jwks(f"{lms.url}/jwks", 5, 64 * 1024)
    assert list(keys) == [lms.kid] and keys[lms.kid].key_type == "RSA"
    with pytest.raises(KeysUnavailable, match="404"):
        fetch_jwks(f"{lms.url}/nothing", 5, 64 * 1024)
    with pytest.raises(KeysUnavailable, match="more than 100 bytes"):
        fetch_jwks(f"{lms.url}/jwks", 5, 100)


def test_unknown_key_ids_refetch_at_most_once_per_interval(lms):
    real = fetch_jwks(f"{lms.url}/jwks", 5, 64 * 1024)
    fetch, now = CountingFetch(real), [0.0]
    keys = KeySet(fetch, max_age=300, refetch_after=30, clock=lambda: now[0])

    async def attack(n):
        return await asyncio.gather(*(keys.key_for(f"made-up-{i}") for i in range(n)), return_exceptions=True)

    results = asyncio.run(attack(50))
    assert all(isinstance(r, LaunchRefused) and r.sentence == rules.SIGNATURE for r in results)
    assert fetch.calls == 1  # 50 forged key ids, one fetch
    now[0] = 10
    asyncio.run(attack(50))
    assert fetch.calls == 1
    now[0] = 31
    asyncio.run(attack(50))
    assert fetch.calls == 2
    assert asyncio.run(keys.key_for(lms.kid)) is keys.keys[lms.kid]  # the real one, from the cache
    assert fetch.calls == 2
    now[0] = 400  # stale: refetched; a failed fetch keeps the keys known
    fetch.fail = True
    assert asyncio.run(keys.key_for(lms.kid)).key_id == lms.kid
    assert fetch.calls == 3


def test_no_keys_at_all_is_a_clear_503():
    fetch = CountingFetch({})
    fetch.fail = True
    with pytest.raises(LaunchRefused) as e:
        asyncio.run(KeySet(fetch).key_for("k"))
    assert e.value.status == 503 and e.value.sentence == rules.KEYS_UNAVAILABLE


class SlowJWKS(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(1.5)
        try:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"keys": []}')
        except OSError:  # the hub gave up waiting, as it should
            pass

    def log_message(self, *args):
        pass


def test_a_slow_lms_does_not_stop_the_event_loop():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowJWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    try:
        keys = KeySet(lambda: fetch_jwks(url, 0.5, 1024))

        async def main():
            ticks = 0
            task = asyncio.ensure_future(keys.key_for("k"))
            while not task.done():
                ticks += 1
                await asyncio.sleep(0.01)
            return ticks, task.exception()

        started = time.monotonic()
        ticks, error = asyncio.run(main())
        print(f"JWKS fetch gave up after {time.monotonic() - started:.2f}s; the loop ran {ticks} times meanwhile")
        assert ticks > 1  # the loop kept serving while the fetch waited
        assert isinstance(error, LaunchRefused) and error.status == 503  # timed out: no keys
    finally:
        server.shutdown()
        server.server_close()


# --- configuration --------------------------------------------------------------------------------

GOOD = {"issuer": "https://moodle.example.org", "client_id": "abc", "authorize_url":
        "https://moodle.example.org/mod/lti/auth.php", "jwks_url": "https://moodle.example.org/mod/lti/certs.php",
        "username_key": ""}


def test_missing_settings_are_named_with_where_to_set_them():
    problems = lti_setting_problems({"issuer": "x"}, "/srv/state/goldenhub.yaml")
    assert problems == ["LTI 1.3 login needs the LMS's client_id, authorize_url, jwks_url: set "
                        "GOLDENHUB_LTI_CLIENT_ID, GOLDENHUB_LTI_AUTHORIZE_URL, GOLDENHUB_LTI_JWKS_URL or `lti:` in "
                        "/srv/state/goldenhub.yaml"]
    assert lti_setting_problems(GOOD, "f") == []
    plain = lti_setting_problems({**GOOD, "jwks_url": "http://moodle.example.org/certs"}, "f")
    assert len(plain) == 1 and "must be an https:// URL" in plain[0]
    assert lti_setting_problems({**GOOD, "jwks_url": "http://127.0.0.1:9/certs"}, "f") == []
    assert "must be a claim name" in lti_setting_problems({**GOOD, "username_key": "a b"}, "f")[0]


def settings(tmp_path: Path, lti_settings: dict) -> Settings:
    s = Settings(state_dir=tmp_path, courses_dir=tmp_path / "courses", auth="lti", lti=lti_settings,
                 db_url="sqlite:////x/db.sqlite")
    s.secrets = {"student_password": "s" * 20, "admin_password": "a" * 44}
    return s


def test_update_auth_lti_configures_the_authenticator(tmp_path):
    c = Config()
    update_auth(c, settings(tmp_path, {**GOOD, "client_id": "abc, def"}))
    assert c.JupyterHub.authenticator_class is GoldenLTI13Authenticator
    auth = c.GoldenLTI13Authenticator
    assert (auth.issuer, auth.client_id, auth.jwks_endpoint, auth.username_key) == (
        GOOD["issuer"], {"abc", "def"}, GOOD["jwks_url"], "email")
    assert (auth.courses_dir, auth.db_url) == (str(tmp_path / "courses"), "sqlite:////x/db.sqlite")
    assert c.Authenticator.allow_all is True


def test_update_lti_refuses_to_start_without_the_lms(tmp_path):
    with pytest.raises(SystemExit) as e:
        update_lti(Config(), settings(tmp_path, {"issuer": "https://moodle.example.org"}))
    assert "needs the LMS's client_id, authorize_url, jwks_url" in str(e.value)
    assert str(tmp_path / "goldenhub.yaml") in str(e.value)


def test_cross_site_cookies_follow_the_browsers_scheme():
    class Request:
        def __init__(self, proto):
            self.headers, self.protocol = {"X-Forwarded-Proto": proto}, proto

    auth = GoldenLTI13Authenticator()
    assert auth.cross_site(Request("https")) and not auth.cross_site(Request("http"))
    auth.cross_site_cookies = "always"
    assert auth.cross_site(Request("http"))
    auth.cross_site_cookies = "never"
    assert not auth.cross_site(Request("https"))
