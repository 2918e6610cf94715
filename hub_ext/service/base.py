"""What every handler of the service shares: hub login, JSON errors, body limits and
security headers."""

from __future__ import annotations

import json
import traceback

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

MAX_BODY = 64 * 1024  # JSON bodies of this API are small; uploads have their own limit

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; frame-ancestors 'self'; form-action 'self'")

RESET_SCOPE = "custom:goldenhub:reset"
TEMPLATES_SCOPE = "custom:goldenhub:templates"
BRANDING_SCOPE = "custom:goldenhub:branding"


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def ctx(self):
        return self.settings["goldenhub"]

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Frame-Options", "SAMEORIGIN")
        self.set_header("Referrer-Policy", "same-origin")

    @property
    def scopes(self) -> set[str]:
        return set((self.current_user or {}).get("scopes", []))

    @property
    def username(self) -> str:
        return (self.current_user or {}).get("name", "")


class APIHandler(BaseHandler):
    """JSON in, JSON out; errors as {status, message}; no login redirects."""

    def check_xsrf_cookie(self):
        # API calls carry a token in the Authorization header; cookie-authenticated
        # browser calls still go through the hub's XSRF check; no identity at all is a 401
        # (from prepare), not an XSRF complaint.
        if "Authorization" in self.request.headers or self.current_user is None:
            return
        return super().check_xsrf_cookie()

    def prepare(self):
        if self.current_user is None:
            raise web.HTTPError(401, "Authentication required: send a JupyterHub token or log in")

    def json_body(self) -> dict:
        body = self.request.body
        if len(body) > MAX_BODY:
            raise web.HTTPError(413, f"Request body too large: {len(body)} bytes; at most {MAX_BODY}")
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except UnicodeDecodeError:
            raise web.HTTPError(400, "Request body is not valid UTF-8")
        except json.JSONDecodeError as e:
            raise web.HTTPError(400, f"Request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
        if not isinstance(data, dict):
            raise web.HTTPError(400, "Request body must be a JSON object")
        return data

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        if status_code >= 500 and not isinstance(exc, web.HTTPError):
            self.log.error("Unexpected error:\n%s", "".join(traceback.format_exception(*kwargs["exc_info"])))
            message = "Internal error; an administrator can find the details in the service log."
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"status": status_code, "message": message}))
