"""What every handler of the service shares: hub login, XSRF, JSON errors, body limits,
security headers and logs without secrets.

Rules for identity: the caller is identified once, in prepare(), without blocking the event
loop. A valid JupyterHub token (Authorization header) needs no XSRF token; a login cookie
always does on POST/PUT/PATCH/DELETE, and the XSRF token is checked exactly once, by
HubOAuth while it reads the cookie. Tornado's own early call to check_xsrf_cookie (before
prepare, when nobody is identified yet) is skipped: only identification can tell a valid
token from `token garbage`, and asking for the user from inside that call made the
service wait on itself.
"""

from __future__ import annotations

import json
import logging
import re

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated, UserNotAllowed
from tornado import httputil, web

from hub_ext.hubclient import HubAPIError
from hub_ext.i18n import N_, _
from hub_ext.i18n.format import size_text
from hub_ext.service import authz
from hub_ext.service.masking import mask_credentials

log = logging.getLogger("goldenhub.service")

MAX_BODY = 64 * 1024  # JSON bodies of this API are small; uploads have their own limit

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; frame-ancestors 'self'; form-action 'self'")

XSRF_REFUSED = N_("This request carries your login cookie but not this page's XSRF token (_xsrf; %(reason)s), "
                  "so it was refused: send the form from the service's own page, or call the API with a "
                  "JupyterHub token in the Authorization header.")
UNEXPECTED = N_("Something went wrong on the server, so this was not done; an administrator can find the "
                "details in the service log. Try again in a few minutes.")
HUB_UNREACHABLE = N_("The hub did not answer, so this was not done; try again in a minute. If it keeps happening, "
                     "tell your instructor or an administrator.")
HUB_REFUSED = N_("The hub refused this request, so nothing was changed; try again, and if it keeps happening, "
                 "tell your instructor or an administrator.")
# The sentence of an error that carries no message of its own, by status.
PLAIN = {400: N_("This request was not understood, so nothing was changed; go back and try again."),
         401: N_("You are not logged in: log in to the hub and try again."),
         403: N_("You may not do this; if you think you should, ask an administrator."),
         404: N_("There is no such page; go back to your environments page and choose from there."),
         405: N_("This page cannot be used like this; go back and use its buttons."),
         413: N_("What was sent is too large, so nothing was changed.")}

# Query parameters that carry credentials; their values never reach a log line.
_SECRET_PARAMS = re.compile(r"(?i)([?&](?:token|_xsrf|code|state|access_token)=)[^&#]*")


def scrub_uri(uri: str) -> str:
    """A request URI fit for a log: credential-carrying query values replaced by ***."""
    return _SECRET_PARAMS.sub(r"\1***", uri)


def log_request(handler: web.RequestHandler) -> None:
    """The access log (tornado's log_function): status, method, scrubbed URI, duration."""
    status = handler.get_status()
    (log.info if status < 400 else log.warning)(
        "%d %s %s %.1fms", status, handler.request.method, scrub_uri(handler.request.uri or ""),
        1000 * handler.request.request_time())


def samesite_cookie_options() -> dict:
    """Every cookie of the service is SameSite=Lax at least (Strict kept if the hub sets it),
    so another site's form or script never sends the login with it. Applied to HubOAuth's
    login and OAuth-state cookies; returned for tornado's xsrf_cookie_kwargs."""
    auth = HubOAuth.instance()
    strict = any(k.lower() == "samesite" and str(v).lower() == "strict" for k, v in auth.cookie_options.items())
    same_site = {"samesite": "Strict" if strict else "Lax"}
    auth.cookie_options = {**{k: v for k, v in auth.cookie_options.items() if k.lower() != "samesite"}, **same_site}
    return same_site


def domain_status(exc: BaseException | None) -> int | None:
    """The HTTP status a domain error carries (the catalog's StoreError, the hub client's
    HubAPIError: an int `status` from 400 to 599), or None for any other exception."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and not isinstance(exc, web.HTTPError) and 400 <= status <= 599:
        return status
    return None


def error_message(exc: BaseException | None, status_code: int, reason: str) -> str:
    """The one sentence an error answer carries: an HTTPError's or a domain error's own
    message, else (an unexpected exception) a sentence pointing at the service log, never a
    traceback."""
    if isinstance(exc, HubAPIError) and (not exc.reached or exc.status >= 500 or not str(exc)):
        return _(HUB_UNREACHABLE if not exc.reached or exc.status >= 500 else HUB_REFUSED)
    if isinstance(exc, web.HTTPError) and exc.get_message():
        return mask_credentials(exc.get_message())
    if domain_status(exc) and str(exc):
        return mask_credentials(str(exc))
    if status_code >= 500:
        return _(UNEXPECTED)
    return _(PLAIN[status_code]) if status_code in PLAIN else reason


def error_detail(exc: BaseException | None) -> str:
    """What an administrator may see behind a "details" toggle (the template variable
    `detail`): the hub's own answer behind a HubAPIError sentence; '' for everything else.
    Never shown to a student."""
    if isinstance(exc, HubAPIError):
        return mask_credentials(f"{exc.status}: {exc}")[:1000]
    return ""


class Refusal(web.HTTPError):
    """An error answer with extra JSON fields (e.g. `problems`) beside status and message."""

    def __init__(self, status_code: int, message: str, **details):
        super().__init__(status_code, "%s", message)
        self.details = details


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Errors become answers here, in one place: a handler raises (an HTTPError, or a domain
    error carrying its status), and write_error of the API or the pages answers with its
    status and message."""

    _identifying = False
    _identity: dict | None = None
    _xsrf_refusal: str | None = None
    _rules: authz.Rules | None = None
    _staff_scopes: frozenset[str] = frozenset()

    @property
    def ctx(self):
        return self.settings["goldenhub"]

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Frame-Options", "SAMEORIGIN")
        self.set_header("Referrer-Policy", "same-origin")

    def check_xsrf_cookie(self):
        if not self._identifying:
            return  # tornado's call before prepare(): see the module docstring
        try:
            self.hub_auth.check_xsrf_cookie(self)  # skips a request authenticated by a valid token
        except web.HTTPError as e:
            self._xsrf_refusal = e.get_message()
            raise  # HubOAuth then ignores the cookie

    async def prepare(self):
        await self.identify()

    async def identify(self) -> None:
        """Who calls: a valid token's or a login cookie's owner (the cookie only with the
        XSRF token); None if neither. Sets current_user."""
        self._identifying = True
        try:
            model = await self.hub_auth.get_user(self, sync=False)
        finally:
            self._identifying = False
        if model:
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                raise web.HTTPError(403, "%s", _(
                    "This login or token of %(name)s may not use the goldenhub service: that needs the scope "
                    "access:services!service=goldenhub.", name=model.get("name", "?")))
        elif self._xsrf_refusal:
            raise web.HTTPError(403, "%s", _(XSRF_REFUSED, reason=self._xsrf_refusal.rstrip(".")))
        self._identity = model or None
        self.current_user = self._identity
        if model:
            self._staff_scopes = await self.staff_scopes_of(model)

    async def staff_scopes_of(self, model: dict) -> frozenset[str]:
        """The course-staff scopes (authz.staff_scopes) of the caller. HubOAuth's model may be
        minutes old: when it shows any staff group, the hub is asked again, so an instructor
        removed from a course loses its scopes at once."""
        if not authz.staff_scopes(model.get("groups") or ()):
            return frozenset()
        fresh = await self.ctx.hub.user(model.get("name", ""))
        return frozenset(authz.staff_scopes((fresh or {}).get("groups") or ()))

    def get_current_user(self):
        return self._identity  # set in prepare(); never a blocking lookup from a handler

    @property
    def scopes(self) -> set[str]:
        """The caller's goldenhub scopes: their token's, and those they hold as course staff."""
        return set((self.current_user or {}).get("scopes", [])) | self._staff_scopes

    @property
    def username(self) -> str:
        return (self.current_user or {}).get("name", "")

    @property
    def rules(self) -> authz.Rules:
        """Who may do what (hub_ext.service.authz), for this caller and this request."""
        if self._rules is None:
            self._rules = authz.Rules(self.username, frozenset(self.scopes), self.ctx.catalog,
                                      self.ctx.hub.group_members)
        return self._rules

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        """A domain error answers with its own status (tornado would answer 500)."""
        status = domain_status(kwargs.get("exc_info", (None, None, None))[1])
        super().send_error(status or status_code, **kwargs)

    def log_exception(self, typ, value, tb):
        where = f"{self.request.method} {scrub_uri(self.request.uri or '')}"
        if isinstance(value, web.HTTPError) or domain_status(value):
            status = value.status_code if isinstance(value, web.HTTPError) else domain_status(value)
            message = mask_credentials((value.get_message() or value.reason or "") if isinstance(value, web.HTTPError)
                                       else str(value))
            log.warning("%d %s: %s", status, where, message)
        else:
            log.error("Unexpected error in %s", where, exc_info=(typ, value, tb))


class APIHandler(BaseHandler):
    """JSON in, JSON out; every error one JSON {status, message} from write_error; no
    login redirects."""

    async def identify(self) -> None:
        await super().identify()
        if self.current_user is None:
            raise web.HTTPError(401, "%s", _("You are not logged in: log in to the hub, or send a JupyterHub "
                                             "token in the Authorization header."))

    def json_body(self) -> dict:
        body = self.request.body
        if len(body) > MAX_BODY:
            raise web.HTTPError(413, "%s", _("The request body is too large: %(size)s; at most %(limit)s.",
                                             size=size_text(len(body)), limit=size_text(MAX_BODY)))
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except UnicodeDecodeError:
            raise web.HTTPError(400, "%s", _("The request body is not valid UTF-8."))
        except json.JSONDecodeError as e:
            raise web.HTTPError(400, "%s", _("The request body is not valid JSON: %(problem)s at line %(line)d "
                                             "column %(column)d.", problem=e.msg, line=e.lineno, column=e.colno))
        if not isinstance(data, dict):
            raise web.HTTPError(400, "%s", _("The request body must be a JSON object."))
        return data

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        answer = {"status": status_code, "message": error_message(exc, status_code, self._reason)}
        answer.update(getattr(exc, "details", {}))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(answer))


class NotFoundAPIHandler(APIHandler):
    """Any other path under api/: a JSON 404 (not tornado's HTML page)."""

    async def prepare(self):
        raise web.HTTPError(404, "%s", _("There is no API endpoint %(path)s; see api/openapi.json.",
                                         path=self.request.path[:200]))


class BoundedUpload:
    """For @web.stream_request_body handlers. Rule for upload size: at most `max_upload`
    bytes of the body are kept and the rest (up to `read_limit`) is read and dropped, so an
    oversized upload is answered with a 413 sentence (`too_big(size)`) that reaches the
    client through the proxy (a server that hangs up mid-upload makes the proxy answer with
    its own HTML error page instead). Identity is established after the body arrived (a
    form's _xsrf field is in it), by calling identify() in the method."""

    max_upload = 2 * 2**20
    read_limit = 1024 * 2**20

    def too_big(self, size: int) -> str:
        return _("The upload is %(size)s; an upload may be at most %(limit)s.", size=size_text(size),
                 limit=size_text(self.max_upload))

    def prepare(self):
        self.request.connection.set_max_body_size(self.read_limit)
        self._kept: list[bytes] = []
        self._received = 0

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= self.max_upload:
            self._kept.append(chunk)

    def upload_body(self) -> bytes:
        if self._received > self.max_upload:
            raise web.HTTPError(413, self.too_big(self._received))
        return b"".join(self._kept)

    def parse_form(self) -> bool:
        """Form fields and files of a multipart or urlencoded body, where get_argument and
        request.files find them; False for any other body (e.g. raw bytes)."""
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            return False
        args: dict[str, list[bytes]] = {}
        httputil.parse_body_arguments(content_type, self.upload_body(), args, self.request.files,
                                      self.request.headers)
        for name, values in args.items():
            self.request.body_arguments.setdefault(name, []).extend(values)
            self.request.arguments.setdefault(name, []).extend(values)
        return True


# --- typed input: every field is checked before use; a wrong type is a 400 sentence ------------

def str_field(body: dict, name: str, default: str | None = None, required: bool = False) -> str | None:
    value = body.get(name, default)
    if required and value in (None, ""):
        raise web.HTTPError(400, "%s", _("\"%(name)s\" is required: a string.", name=name))
    if value is not None and not isinstance(value, str):
        raise web.HTTPError(400, "%s", _("\"%(name)s\" must be a string, not %(type)s.", name=name,
                                         type=json_type(value)))
    return value


def bool_field(body: dict, name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise web.HTTPError(400, "%s", _("\"%(name)s\" must be true or false, not %(type)s.", name=name,
                                         type=json_type(value)))
    return value


def int_value(name: str, value, low: int, high: int) -> int:
    """A whole number from low to high, given as a JSON number or a decimal string."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise web.HTTPError(400, "%s", _("\"%(name)s\" must be a whole number from %(low)d to %(high)d; got "
                                         "%(value)s.", name=name, low=low, high=high, value=f"{value!r:.40}"))
    return value


def json_type(value) -> str:
    return _({dict: N_("an object"), list: N_("a list"), bool: N_("true/false"), int: N_("a number"),
              float: N_("a number"), type(None): "null"}.get(type(value), N_("a string")))
