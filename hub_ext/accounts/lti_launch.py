"""The rules of an LTI 1.3 launch that need no hub: the sentences a refused person sees,
the mapping of verified claims to a hub user, course and role (pure), the LMS's key cache
and the replay guard. hub_ext.accounts.lti wires them into the hub; its docstring states
the whole policy."""

from __future__ import annotations

import asyncio
import heapq
import json
import re
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

import jwt
from ltiauthenticator.lti13.constants import LTI13_CUSTOM_CLAIM

from hub_ext import contract
from hub_ext.catalog.model import Catalog
from hub_ext.catalog.rules import LMS_CONTEXT_RE

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
# Context (course membership) roles, full and short forms (LTI 1.3 §A.2.2); nothing else counts.
LEARNER_ROLES = frozenset({LIS + "membership#Learner", "Learner"})
INSTRUCTOR_ROLES = frozenset({LIS + "membership#Instructor", "Instructor"})
TA_ROLES = frozenset({LIS + "membership/Instructor#TeachingAssistant", "TeachingAssistant"})
MAX_ROLES, MAX_ROLE_LENGTH = 100, 512

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")  # as rosters; after lower-casing
EMAIL_RE = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,189}")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID_TOKEN, MAX_STATE, MAX_NAME = 64 * 1024, 4096, 200

AGAIN = "Open the course again from your LMS; if this keeps happening, tell your administrator."


class LaunchRefused(Exception):
    """A launch that logs nobody in: `sentence` for the person (the page), `detail` for admins (the log)."""

    def __init__(self, status: int, sentence: str, detail: str = ""):
        super().__init__(sentence)
        self.status, self.sentence, self.detail = status, sentence, detail


# What the person sees, per reason (one sentence each, with what to do).
SIGNATURE = "This course link could not be verified: its signature does not match your LMS's keys. " + AGAIN
AUDIENCE = "This course link was made for another tool, not for this hub. " + AGAIN
ISSUER = "This course link comes from an LMS this hub is not registered with. " + AGAIN
EXPIRED = "This course link has expired. " + AGAIN
REPLAYED = "This course link has already been used. " + AGAIN
NOT_STARTED_HERE = ("This course link was not started in this browser (its login cookies are missing or do not "
                    "match; the browser may block them). " + AGAIN)
MALFORMED = "This course link is incomplete or malformed. " + AGAIN
KEYS_UNAVAILABLE = ("This course link cannot be checked right now: your LMS's keys could not be fetched. "
                    "Try again in a few minutes; if this keeps happening, tell your administrator.")
BUSY = "The hub is receiving too many course links at once. Try again in a minute."
NOT_LINKED = ("Your LMS course is not linked to a course on this hub. Tell your instructor: they link it by adding "
              "the LMS course id to the course's lms_contexts.")
NO_CONTEXT = "This link was not opened from an LMS course. Open it from your course page in the LMS."
NO_ROLE = ("Your role in this LMS course gives no access here: only students (Learner), teaching assistants and "
           "instructors can open it. If that is wrong, ask your instructor to check your role in the LMS.")
BAD_USERNAME = ("Your LMS account sent no user name this hub can use (1-64 characters: lower-case letters, digits, "
                ". _ @ -, starting with a letter or digit). Tell your administrator.")
NOT_RESOURCE_LINK = "This hub opens from course links only (not from a content selection). " + AGAIN
DIRECT = ("This hub is opened from your LMS: go to your course page in the LMS and follow its link to the hub.")
CATALOG_BROKEN = ("The course list of this hub has errors, so your course cannot be found. "
                  "An administrator has been told.")
NOT_RECORDED = ("Your course membership could not be saved. Try again in a minute; if this keeps happening, "
                "tell your administrator.")


# --- pure: who, which course, which role ---------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """A verified launch, mapped: who comes, into which course (None: none) with which role."""

    username: str
    issuer: str
    context_id: str
    course: str | None = None
    role: str | None = None  # contract.ROLES
    display_name: str = ""
    email: str = ""


def role_of(roles: Any) -> str | None:
    """The goldenhub role of an LTI roles claim (None: no usable role). A TeachingAssistant
    names the Instructor role more exactly, so it wins over it; staff wins over Learner."""
    if not isinstance(roles, list) or len(roles) > MAX_ROLES:
        return None
    given = {r for r in roles if isinstance(r, str) and len(r) <= MAX_ROLE_LENGTH}
    if given & TA_ROLES:
        return "ta"
    if given & INSTRUCTOR_ROLES:
        return "instructor"
    if given & LEARNER_ROLES:
        return "student"
    return None


def username_of(claims: dict, username_key: str) -> str:
    """The hub username: the claim `username_key` ("custom_x": x in the custom claim),
    lower-cased; refused unless it fully matches USERNAME_RE. Never another claim instead."""
    data, key = claims, username_key or "sub"
    if key.startswith("custom_"):
        data, key = claims.get(LTI13_CUSTOM_CLAIM), key[len("custom_"):]
    value = data.get(key) if isinstance(data, dict) else None
    name = value.lower() if isinstance(value, str) else ""
    if not USERNAME_RE.fullmatch(name):
        shown = repr(value)[:80] if value is not None else "nothing"
        raise LaunchRefused(403, BAD_USERNAME,
                            f"claim {username_key!r} is {shown}; it must match {USERNAME_RE.pattern}")
    return name


def _text(value: Any, limit: int) -> str:
    return CONTROL_RE.sub("", value).strip()[:limit] if isinstance(value, str) else ""


def make_launch(claims: dict, catalog: Catalog, username_key: str, admin_users: set[str] | frozenset[str]) -> Launch:
    """Map verified id_token claims to a Launch, or raise LaunchRefused (see the module's rules)."""
    message = claims.get(CLAIM + "message_type")
    if message != "LtiResourceLinkRequest":
        raise LaunchRefused(400, NOT_RESOURCE_LINK, f"message_type {str(message)[:60]!r}")
    username = username_of(claims, username_key)
    issuer = str(claims.get("iss", ""))
    admin = username in admin_users
    context = claims.get(CLAIM + "context")
    context_id = context.get("id") if isinstance(context, dict) else None
    name = _text(claims.get("name"), MAX_NAME) or _text(
        f"{_text(claims.get('given_name'), MAX_NAME)} {_text(claims.get('family_name'), MAX_NAME)}", MAX_NAME)
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    email = email if len(email) <= 254 and EMAIL_RE.fullmatch(email) else ""
    base = dict(username=username, issuer=issuer, display_name=name, email=email)
    if not isinstance(context_id, str) or not LMS_CONTEXT_RE.fullmatch(context_id):
        if admin:
            return Launch(context_id="", **base)
        raise LaunchRefused(403, NO_CONTEXT, f"{username}: no usable context id ({str(context_id)[:80]!r})")
    course = catalog.course_of_context(context_id)
    role = role_of(claims.get(CLAIM + "roles"))
    if course is None or role is None:
        if admin:
            return Launch(context_id=context_id, **base)
        if course is None:
            raise LaunchRefused(403, NOT_LINKED, f"{username}: context {context_id!r} is in no course's lms_contexts")
        roles = claims.get(CLAIM + "roles")
        raise LaunchRefused(403, NO_ROLE, f"{username}: no usable role in {str(roles)[:300]} for course {course.id}")
    return Launch(context_id=context_id, course=course.id, role=role, **base)


def course_groups_after(current: set[str], course: str, role: str) -> set[str]:
    """A user's groups after a launch into `course` as `role`: only that course's two groups change."""
    mine = {contract.course_group(course), contract.staff_group(course)}
    return (current - mine) | {contract.group_for_role(course, role)}


# --- the LMS's keys and the nonces seen ----------------------------------------------------------


class KeysUnavailable(Exception):
    pass


def fetch_jwks(url: str, timeout: float, max_bytes: int) -> dict[str | None, jwt.PyJWK]:
    """The signing keys at `url` by key id (blocking: call it in a thread)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (the configured https/loopback URL)
            body = r.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise KeysUnavailable(f"{url} answered more than {max_bytes} bytes")
        keys = jwt.PyJWKSet.from_dict(json.loads(body)).keys
    except KeysUnavailable:
        raise
    except Exception as e:  # network, HTTP, JSON, JWK errors alike: no keys from there now
        raise KeysUnavailable(f"{url}: {type(e).__name__}: {str(e)[:200]}") from None
    return {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}


class KeySet:
    """The LMS's JWKS, cached: fetched in a thread, fresh for `max_age` seconds; an unknown
    key id refetches at most once per `refetch_after` seconds (and concurrent launches share
    one fetch). A failed fetch keeps the keys already known."""

    def __init__(self, fetch: Callable[[], dict], max_age: float = 300, refetch_after: float = 30,
                 clock: Callable[[], float] = time.monotonic, log=None):
        self.fetch, self.max_age, self.refetch_after, self.clock, self.log = fetch, max_age, refetch_after, clock, log
        self.keys: dict[str | None, jwt.PyJWK] = {}
        self.fetched_at: float | None = None  # last try, good or not
        self.fetches = 0
        self._lock: asyncio.Lock | None = None

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        await self._refresh(lambda age: age >= self.max_age)
        if kid not in self.keys:  # a rotated key, or an attacker's made-up id
            await self._refresh(lambda age: age >= self.refetch_after)
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        if kid not in self.keys:
            if not self.keys:
                raise LaunchRefused(503, KEYS_UNAVAILABLE, "no keys known from the LMS's JWKS endpoint")
            raise LaunchRefused(401, SIGNATURE, f"key id {str(kid)[:80]!r} is not in the LMS's JWKS")
        return self.keys[kid]

    async def _refresh(self, due: Callable[[float], bool]) -> None:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:  # decided inside the lock: a fetch just done counts for all waiters
            if self.fetched_at is not None and not due(self.clock() - self.fetched_at):
                return
            self.fetched_at = self.clock()
            self.fetches += 1
            try:
                self.keys = await asyncio.to_thread(self.fetch)
            except KeysUnavailable as e:
                if self.log:
                    self.log.error("LTI: the LMS's keys could not be fetched (keeping %d known): %s", len(self.keys), e)


class ReplayGuard:
    """Every accepted (issuer, nonce), remembered until `until`; a second use is refused.
    Bounded: when `capacity` entries are live, new launches are refused (never forgotten early)."""

    def __init__(self, capacity: int = 100_000, clock: Callable[[], float] = time.time):
        self.capacity, self.clock = capacity, clock
        self.seen: dict[tuple[str, str], float] = {}
        self.expiry: list[tuple[float, tuple[str, str]]] = []

    def accept(self, issuer: str, nonce: str, until: float) -> bool:
        now = self.clock()
        while self.expiry and self.expiry[0][0] <= now:
            _, key = heapq.heappop(self.expiry)
            if self.seen.get(key, now + 1) <= now:
                del self.seen[key]
        key = (issuer, nonce)
        if self.seen.get(key, 0) > now:
            return False
        if len(self.seen) >= self.capacity:
            raise LaunchRefused(503, BUSY, f"replay guard full ({self.capacity} launches within their lifetime)")
        self.seen[key] = until
        heapq.heappush(self.expiry, (until, key))
        return True
