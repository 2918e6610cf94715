"""Local accounts: created from rosters, each student sets a password at first login.

GoldenLocalAuthenticator is jupyterhub-firstuseauthenticator's FirstUseAuthenticator with
these rules (update_local sets it up):

- Only accounts that already exist in the hub log in (create_users False): a roster import,
  an admin or the hub API creates them. allow_all False, allow_existing_users True.
- The first login of an account that has no password sets it: what the student types
  becomes their password (at least min_password_length characters, at most
  MAX_PASSWORD_BYTES bytes, bcrypt's limit). A password that breaks a rule is refused with
  a sentence saying so, and nothing is stored.
- Accounts in seed_passwords (the admins, with the generated admin password from
  state/secrets.yaml) never go through first use: their password is seeded at hub start
  when they have none, and until it is stored the seed is the only password that works.
  So nobody can claim `admin` by logging in first.
- Failed logins are throttled per account: after max_failed_logins failures in a row the
  account is locked for lockout_seconds, and every login (the right password too) is
  refused with a sentence saying when to try again. A success, the end of the lock or an
  admin's password reset clears the count. FirstUseAuthenticator has no throttle.
- bcrypt and the password file never run on the event loop (asyncio.to_thread), and one
  task at a time uses the file (an asyncio.Lock): this Python's dbm is dbm.dumb, which has
  no locking of its own, so only the hub process writes it. The file is 0600 in the
  private state directory.
- A password reset (hub_ext.accounts.hub_handlers) forgets the stored hash: the next login
  sets a new one, which may not be the password from before the reset (its hash is kept
  under RETIRED + name, a key no username can have since "/" is not allowed in one): whoever
  knew the old password cannot claim the account with it. Deleting a user forgets both.
"""

from __future__ import annotations

import asyncio
import dbm
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import bcrypt
from firstuseauthenticator import FirstUseAuthenticator
from firstuseauthenticator.firstuseauthenticator import CustomLoginHandler
from jupyterhub.handlers.login import LoginHandler
from traitlets import Dict, Integer, default

from hub_ext.i18n import N_, _, ngettext

PASSWORD_FILE = "passwords.dbm"  # in the state directory (dbm.dumb adds .dat/.dir/.bak)
MAX_PASSWORD_BYTES = 72  # bcrypt hashes at most 72 bytes; bcrypt 5 refuses longer ones
MAX_USERNAME_CHARS = 255  # JupyterHub's own column size
RETIRED = "/retired/"  # key prefix of a reset account's previous hash ("/" is in no username)
CHANGE_PASSWORD_PATH = "auth/change-password"  # under the hub's base URL (/hub/)
TEMPLATES_DIR = Path(__file__).with_name("templates")


def too_short(minimum: int, first_use: bool = True) -> str:
    if first_use:
        return ngettext("Password too short: this account has no password yet, so the one you enter becomes its "
                        "password. Choose one of at least %(num)d character.",
                        "Password too short: this account has no password yet, so the one you enter becomes its "
                        "password. Choose one of at least %(num)d characters.", minimum)
    return ngettext("Password too short: Choose one of at least %(num)d character.",
                    "Password too short: Choose one of at least %(num)d characters.", minimum)


OLD_PASSWORD = N_("That is this account's password from before the administrator's reset: choose a different "
                  "one. (The reset was made so that the old password stops working.)")


def too_long() -> str:
    return _("Password too long: at most %(bytes)d bytes (about %(bytes)d letters without accents). Choose a "
             "shorter one.", bytes=MAX_PASSWORD_BYTES)


def password_problem(password: str, minimum: int, first_use: bool = True) -> str | None:
    """Why `password` cannot become an account's password, or None if it can."""
    if len(password) < minimum:
        return too_short(minimum, first_use)
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return too_long()
    return None


def hash_password(password: str) -> bytes:
    """bcrypt hash (blocking: call it in a thread)."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt())


def password_matches(password: str, stored: bytes) -> bool:
    """Whether `password` is the one `stored` was made from (blocking: call it in a thread).
    A password bcrypt cannot take (over 72 bytes) matches nothing."""
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, stored)
    except ValueError:  # a damaged entry in the file: no password matches it
        return False


@dataclass
class LoginThrottle:
    """Failed logins per account; `clock` gives seconds since the epoch (tests move it).

    Rule: max_failures failures in a row lock the account for lock_seconds; a success or
    the end of the lock starts the count again. Only existing accounts are counted, so
    the table is bounded by the number of accounts."""

    max_failures: int = 5
    lock_seconds: int = 300
    clock: Callable[[], float] = time.time
    _failures: dict[str, int] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked_until(self, name: str) -> float | None:
        """Until when (epoch seconds) `name` is locked, or None."""
        until = self._locked_until.get(name)
        if until is None:
            return None
        if self.clock() >= until:
            self.clear(name)
            return None
        return until

    def failed(self, name: str) -> float | None:
        """Count a failure; returns until when the account is now locked (None if not)."""
        count = self._failures.get(name, 0) + 1
        if count >= self.max_failures:
            self._failures.pop(name, None)
            self._locked_until[name] = self.clock() + self.lock_seconds
            return self._locked_until[name]
        self._failures[name] = count
        return None

    def clear(self, name: str) -> None:
        self._failures.pop(name, None)
        self._locked_until.pop(name, None)

    def message(self, name: str, until: float) -> str:
        minutes = max(1, round((until - self.clock()) / 60))
        at = datetime.fromtimestamp(until, timezone.utc).strftime("%H:%M")
        return ngettext("Too many failed logins for %(name)s: this account is locked until %(at)s UTC (about "
                        "%(num)d minute). Try again then, or ask an administrator to reset your password.",
                        "Too many failed logins for %(name)s: this account is locked until %(at)s UTC (about "
                        "%(num)d minutes). Try again then, or ask an administrator to reset your password.",
                        minutes, name=name, at=at)


class GoldenLoginHandler(CustomLoginHandler):
    """The hub's login page; FirstUse's handler shows the authenticator's sentence
    (custom_login_error) instead of the hub's "Invalid username or password".

    FirstUse's _render takes no other arguments, while JupyterHub 5+ passes the error
    page's (an expired login form's XSRF refusal): that became a 500 with a traceback.
    This one passes them on."""

    def _render(self, login_error=None, username=None, **kwargs):
        if self.custom_login_error:
            login_error = self.custom_login_error
        return LoginHandler._render(self, login_error, username, **kwargs)


class GoldenLocalAuthenticator(FirstUseAuthenticator):
    """Roster accounts whose first login sets their password (see the module docstring)."""

    seed_passwords = Dict(
        config=True,
        help="""Passwords of accounts that must never be claimed by a first login (the admins),
        by username. Stored (hashed) at hub start when the account has none; until then the
        seed is the only password that works. Example: {"admin": "<generated>"}.""",
    )
    max_failed_logins = Integer(
        5, config=True, help="Failed logins in a row that lock an account (default 5).")
    lockout_seconds = Integer(
        300, config=True, help="Seconds an account stays locked after too many failed logins (default 300).")

    @default("create_users")
    def _default_create_users(self):
        return False

    @default("allow_all")
    def _default_allow_all(self):
        return False  # FirstUse allows everyone when allowed_users is empty

    @default("allow_existing_users")
    def _default_allow_existing_users(self):
        return True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.throttle = LoginThrottle(self.max_failed_logins, self.lockout_seconds)
        self._file_lock = asyncio.Lock()

    # --- the password file: one task at a time, always in a thread ----------------------------

    def _read_hash(self, name: str) -> bytes | None:
        with dbm.open(self.dbm_path, "c", 0o600) as db:
            return db.get(name.encode("utf-8"))

    def _write_hash(self, name: str, hashed: bytes | None, only_if_missing: bool = False) -> bool:
        """Store (or, with None, forget) `name`'s hash; returns whether the file changed."""
        with dbm.open(self.dbm_path, "c", 0o600) as db:
            key = name.encode("utf-8")
            if hashed is None:
                if key not in db:
                    return False
                del db[key]
                return True
            if only_if_missing and key in db:
                return False
            db[key] = hashed
            return True

    async def stored_hash(self, name: str) -> bytes | None:
        async with self._file_lock:
            return await asyncio.to_thread(self._read_hash, name)

    async def store_hash(self, name: str, hashed: bytes | None, only_if_missing: bool = False) -> bool:
        async with self._file_lock:
            return await asyncio.to_thread(self._write_hash, name, hashed, only_if_missing)

    async def has_password(self, name: str) -> bool:
        return await self.stored_hash(self.normalize_username(name)) is not None

    # --- logging in ---------------------------------------------------------------------------

    async def authenticate(self, handler, data):
        username = data.get("username") if isinstance(data, dict) else None
        password = data.get("password") if isinstance(data, dict) else None
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            return None
        if len(username) > MAX_USERNAME_CHARS:
            return None
        name = self.normalize_username(username)
        if not self.create_users and handler.find_user(name) is None:
            return None  # accounts come from rosters; the hub's sentence says no more
        until = self.throttle.locked_until(name)
        if until is not None:  # not even checked: the right password waits too
            return self._refuse(handler, self.throttle.message(name, until))

        stored = await self.stored_hash(name)
        if stored is None and name in self.seed_passwords:
            ok = hmac.compare_digest(password.encode("utf-8"), str(self.seed_passwords[name]).encode("utf-8"))
            if ok:
                await self.store_hash(name, await asyncio.to_thread(hash_password, password), only_if_missing=True)
        elif stored is None:  # first login: the password becomes the account's
            problem = password_problem(password, self.min_password_length)
            if problem:
                return self._refuse(handler, problem)
            retired = await self.stored_hash(RETIRED + name)
            if retired is not None and await asyncio.to_thread(password_matches, password, retired):
                return self._refuse(handler, _(OLD_PASSWORD))
            hashed = await asyncio.to_thread(hash_password, password)
            if not await self.store_hash(name, hashed, only_if_missing=True):
                # someone set it a moment ago: this login must match the stored one
                ok = await asyncio.to_thread(password_matches, password, await self.stored_hash(name) or b"")
            else:
                self.log.info("First login of %s: password set", name)
                await self.store_hash(RETIRED + name, None)
                ok = True
        else:
            ok = await asyncio.to_thread(password_matches, password, stored)
        if ok:
            self.throttle.clear(name)
            return name
        until = self.throttle.failed(name)
        if until is not None:
            self.log.warning("Account %s locked for %d s after %d failed logins", name, self.lockout_seconds,
                             self.max_failed_logins)
            return self._refuse(handler, self.throttle.message(name, until))
        return None  # the hub says "Invalid username or password"

    @staticmethod
    def _refuse(handler, message: str) -> None:
        handler.custom_login_error = message  # shown by GoldenLoginHandler instead of the hub's sentence
        return None

    async def change_password(self, name: str, current: str, new: str) -> tuple[bool, str]:
        """A logged-in user changes their own password; the current one is asked for (a
        borrowed session alone cannot take the account over) and failures count toward the
        lock. Returns (changed, the sentence to show)."""
        name = self.normalize_username(name)
        until = self.throttle.locked_until(name)
        if until is not None:
            return False, self.throttle.message(name, until)
        stored = await self.stored_hash(name)
        if stored is not None and not await asyncio.to_thread(password_matches, current, stored):
            until = self.throttle.failed(name)
            if until is not None:
                return False, self.throttle.message(name, until)
            return False, _("Your current password is not right; nothing changed. Type it again.")
        problem = password_problem(new, self.min_password_length, first_use=False)
        if problem:
            return False, _("%(problem)s Nothing changed.", problem=problem)
        await self.store_hash(name, await asyncio.to_thread(hash_password, new))
        self.throttle.clear(name)
        self.log.info("%s changed their password", name)
        return True, _("Your password has been changed. Use the new one from your next login on.")

    def reset_password(self, username, new_password):
        raise RuntimeError("GoldenLocalAuthenticator changes passwords with change_password (async, in a thread)")

    async def forget_password(self, name: str) -> bool:
        """An admin's reset: the stored hash is retired, the lock is lifted; the next login
        sets a new password (not the retired one). Returns whether there was one."""
        name = self.normalize_username(name)
        self.throttle.clear(name)
        async with self._file_lock:
            return await asyncio.to_thread(self._retire, name)

    def _retire(self, name: str) -> bool:
        with dbm.open(self.dbm_path, "c", 0o600) as db:
            key = name.encode("utf-8")
            if key not in db:
                return False
            db[(RETIRED + name).encode("utf-8")] = db[key]
            del db[key]
            return True

    # --- the hub's hooks ----------------------------------------------------------------------

    async def add_user(self, user):
        super().add_user(user)
        seed = self.seed_passwords.get(user.name)
        if seed and await self.stored_hash(user.name) is None:
            await self.store_hash(user.name, await asyncio.to_thread(hash_password, str(seed)), only_if_missing=True)
            self.log.info("Password of %s seeded from the generated admin password", user.name)

    async def delete_user(self, user):
        super(FirstUseAuthenticator, self).delete_user(user)  # FirstUse forgets the allowed_users entry
        self.throttle.clear(user.name)
        await self.store_hash(user.name, None)
        await self.store_hash(RETIRED + user.name, None)

    def get_handlers(self, app):
        from hub_ext.accounts.hub_handlers import ChangePasswordHandler

        return [(r"/login", GoldenLoginHandler), (r"/" + CHANGE_PASSWORD_PATH, ChangePasswordHandler)]


def update_local(c, s) -> None:
    """Local accounts (Settings.auth == "local"): GoldenLocalAuthenticator, its password
    file in the state directory, the admins' seeded passwords, the hub's password-reset
    API and the login page's hint."""
    from hub_ext.accounts.hub_handlers import make_handlers

    c.JupyterHub.authenticator_class = GoldenLocalAuthenticator
    c.GoldenLocalAuthenticator.dbm_path = str(s.state_dir / PASSWORD_FILE)
    c.GoldenLocalAuthenticator.min_password_length = s.min_password_length
    c.GoldenLocalAuthenticator.create_users = False
    c.Authenticator.allow_all = False
    c.Authenticator.allow_existing_users = True
    c.Authenticator.admin_users = set(s.admin_users)
    c.GoldenLocalAuthenticator.seed_passwords = {name: s.secrets["admin_password"] for name in s.admin_users}
    c.JupyterHub.template_paths.append(str(TEMPLATES_DIR))
    c.JupyterHub.extra_handlers.extend(make_handlers())
    c.JupyterHub.template_vars.update({"goldenhub_min_password_length": s.min_password_length,
                                       "goldenhub_change_password_path": CHANGE_PASSWORD_PATH})
