"""A small LTI 1.3 platform (an LMS) for the tests, in the test process: a threaded HTTP
server on 127.0.0.1 with its own RSA key pair, a JWKS endpoint, course pages whose launch
starts the OIDC third-party-initiated login at the hub, and an authorisation endpoint that
answers the hub's redirect with a signed id_token, claims as Moodle sends them.

The only fake in the LTI tests (an LMS cannot run here); its tokens are real RS256 JWTs.
Per launch (TestLMS.launch_url): who, with which roles, from which course (context), and an
attack: "other_key" (signed with a key not in the JWKS, same key id), "wrong_aud" (for
another tool), "expired"; `capture=True` keeps the posted id_token and state (replay tests)
and waits for a click instead of posting at once.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LEARNER = [LIS + "membership#Learner"]
INSTRUCTOR = [LIS + "institution/person#Instructor", LIS + "membership#Instructor"]
TA = [LIS + "membership/Instructor#TeachingAssistant"]
SITE_ADMIN = [LIS + "institution/person#Administrator", LIS + "system/person#Administrator"]
ATTACKS = (None, "other_key", "wrong_aud", "expired")


@dataclass
class Person:
    username: str  # Moodle's login name (the ext claim); the hub uses the email by default
    email: str
    name: str
    sub: str = field(default_factory=lambda: str(uuid.uuid4().int % 10**6))


@dataclass
class LaunchSpec:
    person: Person
    roles: list[str]
    context: dict | None  # {"id", "label", "title"}, or None: a launch from outside a course
    attack: str | None = None
    capture: bool = False


class TestLMS:
    __test__ = False  # not a pytest class

    def __init__(self, client_id: str = "goldenhub-tool", deployment_id: str = "1"):
        self.client_id, self.deployment_id = client_id, deployment_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "lms-" + secrets.token_hex(4)
        self.launches: dict[str, LaunchSpec] = {}
        self.captured: dict[str, dict] = {}  # launch id -> {"id_token", "state", "redirect_uri"}
        self.tool_url = ""  # the hub's URL, once registered (register_tool)
        self.requests: list[str] = []  # paths asked, e.g. how often the JWKS was fetched
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- registration, as an LMS admin registers an external tool ---

    @property
    def issuer(self) -> str:
        return self.url

    def settings_env(self, username_key: str = "email") -> dict[str, str]:
        """The hub's GOLDENHUB_LTI_* settings for this platform."""
        return {"GOLDENHUB_LTI_ISSUER": self.issuer, "GOLDENHUB_LTI_CLIENT_ID": self.client_id,
                "GOLDENHUB_LTI_AUTHORIZE_URL": f"{self.url}/authorize", "GOLDENHUB_LTI_JWKS_URL": f"{self.url}/jwks",
                "GOLDENHUB_LTI_USERNAME_KEY": username_key}

    def register_tool(self, hub_url: str) -> None:
        self.tool_url = hub_url.rstrip("/")

    @property
    def redirect_uri(self) -> str:
        return f"{self.tool_url}/hub/lti13/oauth_callback"

    def jwks(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- launches ---

    def launch_url(self, person: Person, roles: list[str], context: dict | None, attack: str | None = None,
                   capture: bool = False) -> str:
        """The course page whose link launches the tool: opening it in a browser starts the launch."""
        assert attack in ATTACKS, attack
        launch_id = secrets.token_urlsafe(12)
        self.launches[launch_id] = LaunchSpec(person, roles, context, attack, capture)
        return f"{self.url}/course/launch/{launch_id}"

    def id_token(self, spec: LaunchSpec, nonce: str) -> str:
        now = int(time.time())
        iat, exp = (now - 120, now - 60) if spec.attack == "expired" else (now, now + 60)
        context = spec.context
        claims = {
            "iss": self.issuer,
            "aud": "another-tool" if spec.attack == "wrong_aud" else self.client_id,
            "azp": "another-tool" if spec.attack == "wrong_aud" else self.client_id,
            "sub": spec.person.sub,
            "exp": exp, "iat": iat, "nonce": nonce,
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "target_link_uri": f"{self.tool_url}/hub/spawn",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "resource_link": {"id": "7", "title": "Jupyter", "description": ""},
            CLAIM + "roles": spec.roles,
            CLAIM + "launch_presentation": {"locale": "en", "document_target": "window",
                                            "return_url": f"{self.url}/course"},
            CLAIM + "tool_platform": {"product_family_code": "moodle", "version": "2024100700",
                                      "guid": "lms.example.org", "name": "Test LMS"},
            CLAIM + "ext": {"user_username": spec.person.username, "lms": "moodle-2"},
            CLAIM + "custom": {},
            "given_name": spec.person.name.split(" ")[0],
            "family_name": spec.person.name.split(" ")[-1],
            "name": spec.person.name,
            "email": spec.person.email,
        }
        if context is not None:
            claims[CLAIM + "context"] = {**context, "type": [LIS + "course#CourseOffering"]}
        key = self.other_key if spec.attack == "other_key" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><form id="f" method="post" action="{action}">{fields}
<button type="submit" id="go">Continue</button></form>{script}</body></html>"""
AUTO_SUBMIT = "<script>document.getElementById('f').submit()</script>"


def _form(title: str, action: str, fields: dict[str, str], auto: bool = True) -> bytes:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    return PAGE.format(title=html.escape(title), action=html.escape(action), fields=inputs,
                       script=AUTO_SUBMIT if auto else "").encode()


def _handler_for(lms: TestLMS):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def answer(self, status: int, body: bytes, kind: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            lms.requests.append(url.path)
            if url.path == "/jwks":
                return self.answer(200, json.dumps(lms.jwks()).encode(), "application/json")
            if url.path.startswith("/course/launch/"):
                return self.launch(url.path.rsplit("/", 1)[-1])
            if url.path == "/authorize":
                return self.authorize({k: v[0] for k, v in parse_qs(url.query).items()})
            self.answer(404, b"not found")

        def launch(self, launch_id: str) -> None:
            """Step 1: third-party initiated login, a form post to the tool's login URL."""
            spec = lms.launches.get(launch_id)
            if spec is None:
                return self.answer(404, b"no such launch")
            fields = {"iss": lms.issuer, "login_hint": spec.person.sub + ":" + launch_id,
                      "target_link_uri": f"{lms.tool_url}/hub/spawn", "lti_message_hint": launch_id,
                      "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id}
            title = (spec.context or {}).get("title", "Test LMS")
            self.answer(200, _form(title, f"{lms.tool_url}/hub/lti13/oauth_login", fields))

        def authorize(self, q: dict[str, str]) -> None:
            """Step 2-3: the tool's authentication request; the answer posts the id_token back."""
            expected = {"response_type": "id_token", "response_mode": "form_post", "scope": "openid",
                        "prompt": "none", "client_id": lms.client_id, "redirect_uri": lms.redirect_uri}
            wrong = [f"{k}={q.get(k)!r} (expected {v!r})" for k, v in expected.items() if q.get(k) != v]
            spec = lms.launches.get(q.get("lti_message_hint", ""))
            if spec is None or q.get("login_hint") != f"{spec.person.sub}:{q.get('lti_message_hint')}":
                wrong.append("unknown login_hint / lti_message_hint")
            if not q.get("nonce") or not q.get("state"):
                wrong.append("nonce and state are required")
            if wrong:
                return self.answer(400, ("LMS refused the authentication request: " + "; ".join(wrong)).encode())
            fields = {"id_token": lms.id_token(spec, q["nonce"]), "state": q["state"]}
            if spec.capture:
                lms.captured[q["lti_message_hint"]] = {**fields, "redirect_uri": q["redirect_uri"]}
            self.answer(200, _form("Returning to the tool", q["redirect_uri"], fields, auto=not spec.capture))

    return Handler
