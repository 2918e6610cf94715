"""Password resets of local accounts over the service's REST API:
POST api/accounts/<user>/password-reset.

Rules: only the unfiltered accounts scope (authz Action.ACCOUNTS: admins); only when the
platform uses local accounts (GOLDENHUB_AUTH=local, else 409: the LMS or the demo's class
password has no per-account password to reset). The hub does the reset (its handler in
hub_ext.accounts.hub_handlers: forget the hash, log the user out everywhere; admins' accounts
refused); this service asks it with its own token and writes the audit entry
("password-reset", with the actor), refused and failed attempts too.
"""

from __future__ import annotations

import asyncio
import os
import re
from urllib.parse import quote

from tornado import web

from hub_ext.hubclient import HubAPIError
from hub_ext.i18n import _
from hub_ext.service.authz import Action, refusal
from hub_ext.service.base import APIHandler

# JupyterHub user names: anything but "/" and whitespace-only; bounded here.
USERNAME = re.compile(r"[^/\s][^/]{0,254}")


def auth_mode() -> str:
    """How people log in on this platform (the hub passes GOLDENHUB_AUTH to the service)."""
    return os.environ.get("GOLDENHUB_AUTH", "local")


def reset_sentence(user: str) -> str:
    return _("%(user)s's password was reset and %(user)s was logged out everywhere. %(user)s sets a new password "
             "at the next login: tell %(user)s to log in now (until then, whoever logs in first as %(user)s "
             "chooses it).", user=user)


class PasswordResetHandler(APIHandler):
    async def post(self, user: str):
        if not self.rules.may_now(Action.ACCOUNTS):
            await asyncio.to_thread(self.ctx.audit, self.username, "password-reset", user[:255], "", "refused",
                                    "missing scope")
            raise web.HTTPError(403, refusal(Action.ACCOUNTS))
        if not USERNAME.fullmatch(user):
            raise web.HTTPError(400, "%s", _("%(user)s is not a user name (1 to 255 characters, no \"/\"); give "
                                             "the name as the hub's user list shows it.", user=repr(user[:80])))
        mode = auth_mode()
        if mode != "local":
            raise web.HTTPError(409, "%s", _("This platform logs people in with %(mode)s (GOLDENHUB_AUTH=%(mode)s), "
                                             "which keeps no password per account: there is nothing to reset. "
                                             "Password resets exist for local accounts only.", mode=mode))
        try:
            answer = await self.ctx.hub.request("POST", f"/goldenhub/password-reset/{quote(user, safe='')}")
        except HubAPIError as e:
            result = "refused" if e.status in (403, 404, 409) else "failed"
            await asyncio.to_thread(self.ctx.audit, self.username, "password-reset", user, "", result, str(e))
            if e.status in (403, 404, 409):
                raise web.HTTPError(e.status, "%s", str(e))
            raise web.HTTPError(502, "%s", _("The hub did not reset the password (%(reason)s); nothing changed. Try "
                                             "again; the hub's log says more.", reason=str(e)))
        answer = answer or {}
        detail = f"{answer.get('sessions_revoked', 0)} login sessions revoked"
        await asyncio.to_thread(self.ctx.audit, self.username, "password-reset", user, "", "ok", detail)
        self.write_json({"user": user, "result": "ok", "message": reset_sentence(user),
                         "had_password": bool(answer.get("had_password"))})


def handlers(prefix: str) -> list:
    return [(prefix + r"api/accounts/([^/]+)/password-reset", PasswordResetHandler)]
