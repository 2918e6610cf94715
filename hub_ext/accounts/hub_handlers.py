"""Handlers in the hub process for local accounts: a student changes their own password
(/hub/auth/change-password), and an admin's reset through the hub's REST API
(POST /hub/api/goldenhub/password-reset/<user>), which the goldenhub service calls.

Rules of a reset:
- It needs the scope custom:goldenhub:accounts unfiltered (a reset hands the whole account
  to whoever logs in next, so no filter can limit it); the goldenhub service holds it.
- It forgets the stored password hash (the next login sets a new one), lifts a login lock,
  and logs the user out everywhere: the hub's login cookie stops working (cookie_id is
  rotated) and the OAuth tokens of their logins (their server's and the services' sessions)
  are revoked. API tokens the user made themselves and their running server's own token
  are kept: the server keeps running and the student's files are not touched.
- Administrators' accounts are refused (403): an admin changes their own password.
- Unknown users are 404.
"""

from __future__ import annotations

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import new_token
from tornado import web

from hub_ext.i18n import _

ACCOUNTS_SCOPE = "custom:goldenhub:accounts"
RESET_PATH = r"/api/goldenhub/password-reset/([^/]+)"  # under the hub prefix: /hub/api/...


class ChangePasswordHandler(BaseHandler):
    """GET/POST /hub/auth/change-password: a logged-in user sets a new password, giving
    their current one (GoldenLocalAuthenticator.change_password)."""

    async def _page(self, message: str = "", ok: bool = False) -> None:
        html = await self.render_template("change-password.html", result_message=message, changed=ok,
                                          min_length=self.authenticator.min_password_length)
        self.finish(html)

    @web.authenticated
    async def get(self):
        await self._page()

    @web.authenticated
    async def post(self):
        current = self.get_body_argument("current_password", default="", strip=False)
        new = self.get_body_argument("password", default="", strip=False)
        changed, message = await self.authenticator.change_password(self.current_user.name, current, new)
        if not changed:
            self.set_status(400)
        await self._page(message, changed)


class PasswordResetAPIHandler(APIHandler):
    """POST /hub/api/goldenhub/password-reset/<user> (see the module docstring)."""

    _checked = None  # the scope check, made once JupyterHub has registered the custom scope

    async def post(self, name: str):
        # needs_scope checks at decoration that the scope exists, and custom scopes are
        # registered after this module is imported (at config load): so it wraps here.
        # The argument is not called user_name on purpose: a !user= filter grants nothing.
        cls = type(self)
        if cls._checked is None:
            cls._checked = needs_scope(ACCOUNTS_SCOPE)(cls._reset)
        await cls._checked(self, name)

    async def _reset(self, name: str):
        user = self.find_user(name)
        if user is None:
            raise web.HTTPError(404, "%s", _("There is no user %(user)s.", user=name[:80]))
        if user.admin or user.name in self.authenticator.admin_users:
            raise web.HTTPError(403, "%s", _("%(user)s is an administrator: an admin's password is not reset here "
                                             "(whoever may reset passwords would get an admin account). The admin "
                                             "changes it at /hub/auth/change-password.", user=user.name))
        forget = getattr(self.authenticator, "forget_password", None)
        if forget is None:
            raise web.HTTPError(409, "%s", _("This hub does not use local accounts (GOLDENHUB_AUTH is not local): "
                                             "passwords are kept by the login provider, not by the hub."))
        had_password = await forget(user.name)
        user.orm_user.cookie_id = new_token()  # every hub login cookie of theirs stops working
        revoked = 0
        for token in list(user.orm_user.api_tokens):
            if token.oauth_client_id:  # a login session (their server's, a service's)
                self.db.delete(token)
                revoked += 1
        self.db.commit()
        self.log.info("Password of %s reset by %s (%s; %d login sessions revoked)", user.name,
                      getattr(self.current_user, "name", "?"), "had one" if had_password else "had none", revoked)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish({"user": user.name, "had_password": had_password, "sessions_revoked": revoked})


def make_handlers() -> list[tuple]:
    """Entries for c.JupyterHub.extra_handlers (the hub adds its /hub/ prefix)."""
    return [(RESET_PATH, PasswordResetAPIHandler)]
