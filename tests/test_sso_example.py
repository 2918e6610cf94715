"""docs/examples/sso_oauth.py on a real hub: a user logs in through an OpenID Connect
provider (authorize -> code -> token -> userinfo) and gets the course groups the provider's
groups claim names, as docs/sso.md says.

The provider is the one fake here (no identity provider can run on these machines): a small
HTTP server that speaks the protocol's four steps, checks the client's secret and the code,
and records what it was sent."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from hub_ext.paths import REPO_ROOT
from tests.helpers import HUB_PORT, PREFIX, ServiceClient, copy_courses, hub_running, user_token

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "docs" / "examples" / "sso_oauth.py"
CLIENT_ID = "goldenhub-test"


class Provider(ThreadingHTTPServer):
    """A minimal OIDC provider on loopback; `users` are its accounts (claims by name), and
    `login_as` the one whose browser arrives at /authorize next."""

    def __init__(self, client_secret: str):
        super().__init__(("127.0.0.1", 0), ProviderHandler)
        self.client_secret = client_secret
        self.users: dict[str, dict] = {}
        self.login_as = ""
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.authorize_requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProviderHandler(BaseHTTPRequestHandler):
    server: Provider

    def log_message(self, *args):
        pass

    def answer(self, status: int, body: dict | None = None, location: str | None = None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        data = json.dumps(body or {}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/authorize":
            self.server.authorize_requests.append(query)
            if query.get("client_id") != CLIENT_ID:
                return self.answer(400, {"error": "unauthorized_client"})
            code = secrets.token_urlsafe(16)
            self.server.codes[code] = self.server.login_as
            target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
            return self.answer(302, location=target)
        if url.path == "/userinfo":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            name = self.server.tokens.get(token)
            return self.answer(200, self.server.users[name]) if name else self.answer(401, {"error": "invalid_token"})
        self.answer(404)

    def do_POST(self):
        if urlparse(self.path).path != "/token":
            return self.answer(404)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        if client_id != CLIENT_ID or secret != self.server.client_secret:
            return self.answer(401, {"error": "invalid_client"})
        name = self.server.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or name is None:
            return self.answer(400, {"error": "invalid_grant"})
        token = secrets.token_urlsafe(16)
        self.server.tokens[token] = name
        self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})


@pytest.fixture(scope="module")
def provider():
    server = Provider(client_secret=secrets.token_urlsafe(24))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def sso_hub(tmp_path_factory, provider):
    tmp = tmp_path_factory.mktemp("sso")
    secret_file = tmp / "oidc-secret"
    secret_file.write_text(provider.client_secret + "\n")
    secret_file.chmod(0o600)
    port = HUB_PORT + 44
    env = {
        "GOLDENHUB_AUTH": "local",
        "GOLDENHUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GOLDENHUB_OIDC_CLIENT_ID": CLIENT_ID,
        "GOLDENHUB_OIDC_CLIENT_SECRET_FILE": str(secret_file),
        "GOLDENHUB_OIDC_AUTHORIZE_URL": provider.url + "/authorize",
        "GOLDENHUB_OIDC_TOKEN_URL": provider.url + "/token",
        "GOLDENHUB_OIDC_USERINFO_URL": provider.url + "/userinfo",
        "GOLDENHUB_OIDC_GROUPS_CLAIM": "groups",
    }
    with hub_running(tmp / "state", copy_courses(tmp / "courses"), port, f"{PREFIX}s",
                     extra_config=f"load_subconfig({str(EXAMPLE)!r})\n", env=env) as hub:
        yield hub


def test_oauth_login_sends_the_browser_to_the_providers_authorize_url(sso_hub, provider):
    r = requests.get(f"{sso_hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    target = urlparse(r.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == provider.url + "/authorize"
    query = parse_qs(target.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{sso_hub.url}/hub/oauth_callback"]
    assert query["response_type"] == ["code"] and query["state"][0]
    login_page = requests.get(f"{sso_hub.url}/hub/login", timeout=30).text
    assert "Sign in with" in login_page and "First time here?" not in login_page


def test_a_roster_account_logs_in_through_the_provider_and_gets_its_course_groups(sso_hub, provider):
    sso_hub.request("POST", "/users/sso-student").raise_for_status()  # as a roster import creates it
    provider.users["sso-student"] = {"sub": "1234", "preferred_username": "sso-student",
                                     "groups": ["goldenhub-course:intro-python", "goldenhub-course:lab:staff",
                                                "library-staff", "goldenhub-course:Bad Name"]}
    provider.login_as = "sso-student"
    session = requests.Session()
    r = session.get(f"{sso_hub.url}/hub/oauth_login", timeout=60)
    assert r.status_code == 200 and "/hub/login" not in r.url, (r.url, sso_hub.log_tail())
    assert session.get(f"{sso_hub.url}/hub/home", timeout=30, allow_redirects=False).status_code == 200
    user = sso_hub.request("GET", "/users/sso-student").json()
    assert sorted(user["groups"]) == ["course:intro-python", "course:lab:staff"]


def test_a_provider_account_without_a_roster_entry_is_refused(sso_hub, provider):
    provider.users["walk-in"] = {"sub": "999", "preferred_username": "walk-in", "groups": []}
    provider.login_as = "walk-in"
    r = requests.get(f"{sso_hub.url}/hub/oauth_login", timeout=60)
    assert r.status_code == 403, r.url
    assert sso_hub.request("GET", "/users/walk-in").status_code == 404


def test_password_resets_answer_that_the_provider_keeps_the_passwords(sso_hub, provider):
    sso_hub.ensure_user("sso-other")
    r = ServiceClient(sso_hub, user_token(sso_hub, "admin")).call("POST", "/accounts/sso-other/password-reset")
    assert r.status_code == 409 and "does not use local accounts" in r.json()["message"], r.text
