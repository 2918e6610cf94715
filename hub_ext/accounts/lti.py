"""LTI 1.3 launches from the LMS (Moodle, Canvas, ...): jupyterhub-ltiauthenticator's
authenticator and handlers with goldenhub's rules on top (the pure parts, the key cache and
the replay guard live in hub_ext.accounts.lti_launch).

Rules of a launch (the callback, GoldenLTI13CallbackHandler.post):
- Checking the id_token never blocks the hub's event loop: the LMS's keys (JWKS) are
  fetched in a thread with a short timeout and a size bound, cached for minutes; a key id
  the cache does not know refetches at most once per `jwks_refetch_seconds` (an attacker
  cannot make the hub fetch per request). Only the configured algorithms (RS256) count.
- Besides upstream's state and nonce cookies, every accepted (issuer, nonce) is remembered
  until the token can no longer be accepted anyway (its exp, at most max_age): a captured
  id_token posted again is refused, even with the captured cookies.
- Who: the username is the `username_key` claim, lower-cased, and must fully match
  USERNAME_RE (the rosters' rule); no fallback to another claim.
- Which course: the context claim's id, looked up in the course files' `lms_contexts`
  (make_launch, pure). Which role: role_of (pure): TeachingAssistant > Instructor > Learner;
  institution and system roles grant nothing. No usable role, no context or an unlinked
  context: refused. Admins (Authenticator.admin_users) may launch from anywhere; they are
  enrolled only when the context is linked and their role usable.
- A refused launch creates nothing: the page says one sentence a student can act on, the
  hub log has the detail for admins.
- A good launch: one hub user per person; for THIS course only, the user leaves the other
  one of (course group, staff group) and joins the group of their role; other groups stay.
  The enrolment row and its audit entry go to the service's database (source "lti",
  actor "lti:<issuer>"), written in a thread before the groups change.

Cookies: the LMS form-posts the id_token across sites, and browsers send SameSite=Lax
cookies only on same-site posts. So the two short-lived LTI cookies (state, nonce) are set
SameSite=None; Secure, as session cookies, whenever the browser reached the hub over https
(`cross_site_cookies` "auto", honouring X-Forwarded-Proto); the hub's login cookie keeps
its own settings. Over plain http (tests: LMS and hub both on 127.0.0.1, one site) they
carry no SameSite attribute.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any
from urllib.parse import urlparse

import jwt
from ltiauthenticator.lti13.auth import LTI13Authenticator
from ltiauthenticator.lti13.error import InvalidAudienceError, TokenError, ValidationError
from ltiauthenticator.lti13.handlers import LTI13CallbackHandler, LTI13LoginInitHandler
from ltiauthenticator.lti13.validator import LTI13LaunchValidator
from ltiauthenticator.utils import convert_request_to_dict
from tornado import web
from traitlets import CaselessStrEnum, Float, Int, Unicode

from hub_ext.accounts.lti_launch import (AUDIENCE, CATALOG_BROKEN, DIRECT, EXPIRED, ISSUER, MALFORMED, MAX_ID_TOKEN,
                                         MAX_STATE, NOT_RECORDED, NOT_STARTED_HERE, REPLAYED, SIGNATURE, KeySet,
                                         Launch, LaunchRefused, ReplayGuard, course_groups_after, fetch_jwks,
                                         make_launch, username_of)
from hub_ext.catalog.model import CatalogError, load_catalog

# --- handlers -------------------------------------------------------------------------------------


def refusal(handler: web.RequestHandler, e: LaunchRefused) -> web.HTTPError:
    """The hub's error page with the person's sentence; the detail goes to the hub log."""
    handler.log.warning("LTI launch refused (%s): %s [%s]", e.status, e.detail or e.sentence,
                        handler.request.remote_ip)
    return web.HTTPError(e.status, e.sentence)


def unverified(token: str) -> str:
    """For the admin's log only: who a refused token claims to be (never trusted for anything)."""
    try:
        data = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    fields = {k: str(data.get(k))[:120] for k in ("iss", "aud", "sub", "email", "exp")}
    return " (unverified claims: " + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"


class GoldenLTI13LoginHandler(LTI13LoginInitHandler):
    """The LMS's login initiation: only from the registered issuer; state and nonce cookies
    cross-site when the hub is reached over https (see the module docstring)."""

    def post(self):
        args = convert_request_to_dict(self.request.arguments)
        if not args.get("iss") or not args.get("login_hint") or not args.get("target_link_uri"):
            raise web.HTTPError(400, DIRECT)
        if args["iss"] != self.authenticator.issuer:
            raise refusal(self, LaunchRefused(403, ISSUER, f"login from issuer {args['iss'][:200]!r}"))
        client_id = args.get("client_id")
        if client_id and client_id not in self.authenticator.client_id:
            raise refusal(self, LaunchRefused(403, AUDIENCE, f"login for client_id {client_id[:200]!r}"))
        return super().post()

    get = post

    def authorize_redirect(self, *, client_id=None, **kwargs) -> None:
        # An LMS may leave client_id out of the login request: the registered one is meant.
        super().authorize_redirect(client_id=client_id or sorted(self.authenticator.client_id)[0], **kwargs)

    def _set_oauth_cookie(self, key: str, value) -> None:
        options: dict[str, Any] = {"expires_days": None, "httponly": True}  # a session cookie
        if self.authenticator.cross_site(self.request):
            options.update(samesite="None", secure=True)
        self._set_cookie(key, value, encrypted=True, **options)


class GoldenLTI13CallbackHandler(LTI13CallbackHandler):
    """The LMS's form post of the id_token: verified without blocking the hub (see the rules)."""

    async def post(self):
        authenticator: GoldenLTI13Authenticator = self.authenticator
        try:
            claims = await self.verified_claims()
            launch = await authenticator.launch_of(claims)
        except LaunchRefused as e:
            raise refusal(self, e)
        user = await self.login_user({"username": launch.username, "launch": launch})
        if user is None:
            raise web.HTTPError(403, MALFORMED)
        try:
            await authenticator.record(user, launch)
        except LaunchRefused as e:
            self.clear_login_cookie()
            raise refusal(self, e)
        await self.redirect_to_next_url(user)

    async def verified_claims(self) -> dict:
        authenticator: GoldenLTI13Authenticator = self.authenticator
        args = convert_request_to_dict(self.request.arguments)
        token, state = args.get("id_token", ""), args.get("state", "")
        if not token or not state or len(token) > MAX_ID_TOKEN or len(state) > MAX_STATE:
            raise LaunchRefused(400, MALFORMED, f"id_token of {len(token)} and state of {len(state)} characters")
        try:
            self.check_state()
        except web.HTTPError as e:
            raise LaunchRefused(400, NOT_STARTED_HERE, e.log_message or "state") from None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise LaunchRefused(400, MALFORMED, f"id_token header: {e}") from None
        validator = LTI13LaunchValidator(parent=self.app)
        if header.get("alg") not in authenticator.jwks_algorithms:
            raise LaunchRefused(401, SIGNATURE, f"algorithm {str(header.get('alg'))[:20]!r} is not allowed")
        try:
            key = await authenticator.key_set.key_for(header.get("kid"))
            claims = jwt.decode(token, key.key, algorithms=list(authenticator.jwks_algorithms),
                                audience=sorted(authenticator.client_id), issuer=authenticator.issuer,
                                leeway=validator.time_leeway,
                                options={"require": ["exp", "iat", "iss", "aud", "nonce"]})
        except LaunchRefused as e:
            e.detail += unverified(token)
            raise
        except jwt.InvalidSignatureError as e:
            raise LaunchRefused(401, SIGNATURE, f"{e}{unverified(token)}") from None
        except jwt.ExpiredSignatureError as e:
            raise LaunchRefused(401, EXPIRED, f"{e}{unverified(token)}") from None
        except jwt.InvalidAudienceError as e:
            raise LaunchRefused(401, AUDIENCE, f"{e}{unverified(token)}") from None
        except jwt.InvalidIssuerError as e:
            raise LaunchRefused(401, ISSUER, f"{e}{unverified(token)}") from None
        except jwt.PyJWTError as e:
            raise LaunchRefused(400, MALFORMED, f"{type(e).__name__}: {e}{unverified(token)}") from None
        try:
            validator.validate_id_token(claims)
            validator.validate_azp_claim(claims, authenticator.client_id)
        except InvalidAudienceError as e:
            raise LaunchRefused(401, AUDIENCE, str(e)) from None
        except TokenError as e:  # issued too long ago
            raise LaunchRefused(401, EXPIRED, str(e)) from None
        except ValidationError as e:
            raise LaunchRefused(400, MALFORMED, str(e)) from None
        try:
            self.check_nonce(claims)
        except web.HTTPError as e:
            raise LaunchRefused(400, NOT_STARTED_HERE, e.log_message or "nonce") from None
        # Remembered until the token can no longer pass the checks above anyway.
        until = min(float(claims["exp"]), time.time() + validator.max_age) + validator.time_leeway + 1
        if not authenticator.replay_guard.accept(claims["iss"], str(claims["nonce"]), until):
            raise LaunchRefused(401, REPLAYED, f"nonce of {claims.get('sub')!r} seen before")
        return claims


# --- the authenticator -----------------------------------------------------------------------------


class GoldenLTI13Authenticator(LTI13Authenticator):
    """LTI 1.3 with goldenhub's rules: course from the context, role from the roles claim."""

    login_service = "your LMS"
    login_handler = GoldenLTI13LoginHandler
    callback_handler = GoldenLTI13CallbackHandler

    courses_dir = Unicode(config=True, help="The course files' directory, whose lms_contexts link LMS courses.")
    db_url = Unicode(config=True, help="The goldenhub service's database URL, where enrolments are recorded.")
    jwks_timeout = Float(5.0, config=True, help="Seconds to wait for the LMS's JWKS endpoint (default 5).")
    jwks_max_bytes = Int(256 * 1024, config=True, help="Largest JWKS answer accepted, in bytes (default 256 KiB).")
    jwks_cache_seconds = Int(300, config=True, help="Seconds the LMS's keys are used before a refetch (default 300).")
    jwks_refetch_seconds = Int(30, config=True, help="Least seconds between refetches for an unknown key id "
                                                     "(default 30): bounds what a forged token can make the hub fetch.")
    replay_capacity = Int(100_000, config=True, help="Launches remembered against replay (default 100000).")
    cross_site_cookies = CaselessStrEnum(
        ("auto", "always", "never"), "auto", config=True,
        help="SameSite=None; Secure on the LTI state and nonce cookies: 'auto' when the browser reached the hub "
             "over https (the LMS posts from another site); 'always' (e.g. Chromium on http://localhost); 'never'.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.key_set = KeySet(lambda: fetch_jwks(self.jwks_endpoint, self.jwks_timeout, self.jwks_max_bytes),
                              self.jwks_cache_seconds, self.jwks_refetch_seconds, log=self.log)
        self.replay_guard = ReplayGuard(self.replay_capacity)
        self._sessions = None
        self._sessions_lock = threading.Lock()

    def cross_site(self, request) -> bool:
        if self.cross_site_cookies == "auto":
            return self.get_uri_scheme(request) == "https"
        return self.cross_site_cookies == "always"

    def get_username(self, token: dict) -> str:
        return username_of(token, self.username_key)

    async def launch_of(self, claims: dict) -> Launch:
        try:
            catalog = await asyncio.to_thread(load_catalog, self.courses_dir)
        except CatalogError as e:
            self.log.error("LTI: the course files in %s have errors:\n%s", self.courses_dir, e)
            raise LaunchRefused(503, CATALOG_BROKEN, "catalog errors") from None
        return make_launch(claims, catalog, self.username_key, set(self.admin_users))

    async def authenticate(self, handler, data=None):
        """Only the callback's verified, mapped Launch logs in (a login form's post does not)."""
        launch = (data or {}).get("launch") if isinstance(data, dict) else None
        return {"name": launch.username} if isinstance(launch, Launch) else None

    async def record(self, user, launch: Launch) -> None:
        """The enrolment row (and audit) in the service's database, then this course's groups."""
        if launch.course is None or launch.role is None:
            return
        try:
            change = await asyncio.to_thread(self._record_row, launch)
        except Exception as e:  # the database: down, locked, an old schema
            self.log.error("LTI: enrolment of %s in %s not recorded: %s", launch.username, launch.course, e)
            raise LaunchRefused(503, NOT_RECORDED, str(e)[:300]) from None
        groups = course_groups_after({g.name for g in user.groups}, launch.course, launch.role)
        user.sync_groups(sorted(groups))
        self.log.info("LTI launch: %s in %s as %s (%s)", launch.username, launch.course, launch.role, change)

    def _record_row(self, launch: Launch) -> str:
        from sqlalchemy.exc import IntegrityError

        from hub_ext.accounts.records import upsert_enrolment
        from hub_ext.service.db import open_database

        with self._sessions_lock:
            if self._sessions is None:
                self._sessions = open_database(self.db_url)
        for attempt in (1, 2):  # two first launches at once: the second finds the row on retry
            with self._sessions() as session:
                try:
                    change = upsert_enrolment(session, launch.course, launch.username, launch.role,
                                              f"lti:{launch.issuer}"[:255], "lti", launch.display_name, launch.email)
                    session.commit()
                    return change
                except IntegrityError:
                    session.rollback()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")


# --- configuration -------------------------------------------------------------------------------

REQUIRED = ("issuer", "client_id", "authorize_url", "jwks_url")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def lti_setting_problems(lti: dict[str, str], where: str) -> list[str]:
    """What is wrong with the LMS registration settings (empty: nothing)."""
    missing = [k for k in REQUIRED if not lti.get(k)]
    problems = []
    if missing:
        problems.append(f"LTI 1.3 login needs the LMS's {', '.join(missing)}: set "
                        f"{', '.join('GOLDENHUB_LTI_' + k.upper() for k in missing)} or `lti:` in {where}")
    for key in ("authorize_url", "jwks_url"):
        url = urlparse(lti.get(key) or "")
        if lti.get(key) and not (url.scheme == "https" or (url.scheme == "http" and url.hostname in LOOPBACK)):
            problems.append(f"lti {key} {lti[key]!r} must be an https:// URL (http:// only on this machine's "
                            f"loopback), in GOLDENHUB_LTI_{key.upper()} or `lti:` in {where}")
    if lti.get("username_key") and not re.fullmatch(r"[A-Za-z0-9_]{1,64}", lti["username_key"]):
        problems.append(f"lti username_key {lti['username_key']!r} must be a claim name such as email, sub or "
                        f"custom_username (in GOLDENHUB_LTI_USERNAME_KEY or `lti:` in {where})")
    return problems


def update_lti(c, s) -> None:
    """LTI 1.3 login (GOLDENHUB_AUTH=lti): the LMS vouches for who comes, so everyone it
    sends is allowed; unlinked courses are refused at the launch."""
    from hub_ext.hubconfig import SETTINGS_FILE

    problems = lti_setting_problems(s.lti, str(s.state_dir / SETTINGS_FILE))
    if problems:
        raise SystemExit("goldenhub refuses to start:\n" + "\n".join(problems))
    c.JupyterHub.authenticator_class = GoldenLTI13Authenticator
    auth = c.GoldenLTI13Authenticator
    auth.issuer = s.lti["issuer"]
    auth.client_id = {v.strip() for v in s.lti["client_id"].split(",") if v.strip()}
    auth.authorize_url = s.lti["authorize_url"]
    auth.jwks_endpoint = s.lti["jwks_url"]
    auth.username_key = s.lti.get("username_key") or "email"
    auth.courses_dir = str(s.courses_dir)
    auth.db_url = s.db_url
    auth.tool_name = "goldenhub"
    c.Authenticator.allow_all = True
