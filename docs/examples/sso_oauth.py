"""goldenhub with single sign-on through an OpenID Connect provider (Keycloak, Azure AD /
Entra ID, Google Workspace, Shibboleth's OIDC OP, ...), using oauthenticator's
GenericOAuthenticator. See docs/sso.md.

Use: set the variables below and start the hub with
    GOLDENHUB_EXTRA_CONFIG=/path/to/sso_oauth.py goldenhub up     (or jupyterhub -f ...)
GOLDENHUB_EXTRA_CONFIG loads after goldenhub's own login settings, so this file replaces the
authenticator; everything else (spawner, service, branding, scopes) stays as it is.

    GOLDENHUB_PUBLIC_URL                https://hub.example.edu (where people open the hub)
    GOLDENHUB_OIDC_CLIENT_ID            the client registered at the provider
    GOLDENHUB_OIDC_CLIENT_SECRET_FILE   a 0600 file holding its secret (never the secret itself in
                                        the environment: JupyterHub keeps environments in its db)
    GOLDENHUB_OIDC_AUTHORIZE_URL        the provider's authorization endpoint
    GOLDENHUB_OIDC_TOKEN_URL            its token endpoint
    GOLDENHUB_OIDC_USERINFO_URL         its userinfo endpoint
  optional:
    GOLDENHUB_OIDC_USERNAME_CLAIM       the claim that becomes the hub user name (preferred_username)
    GOLDENHUB_OIDC_ALLOW                "roster" (default): only accounts that exist in the hub (from a
                                        roster import) may log in; "everyone": anyone the provider
                                        authenticates gets an account
    GOLDENHUB_OIDC_GROUPS_CLAIM         a claim listing the user's groups (e.g. "groups"); when set,
                                        course groups come from the provider (see the caveat)
    GOLDENHUB_OIDC_COURSE_PREFIX        provider groups named <prefix><course id> become the course's
                                        student group course:<course id>, and <prefix><course id>:staff
                                        its staff group (default "goldenhub-course:")

Caveat of course groups from the provider: JupyterHub's manage_groups makes the provider the
only source of every group membership: at each login the user's hub groups become exactly what
the claim maps to, so memberships from a roster import or an admin are removed. Use either the
provider's groups or rosters for course membership, not both.
"""

import os
import re

from hub_ext import contract
from hub_ext.catalog.rules import ID_RE

c = get_config()  # noqa: F821 (provided by JupyterHub's config loader)

REQUIRED = ("GOLDENHUB_PUBLIC_URL", "GOLDENHUB_OIDC_CLIENT_ID", "GOLDENHUB_OIDC_CLIENT_SECRET_FILE",
            "GOLDENHUB_OIDC_AUTHORIZE_URL", "GOLDENHUB_OIDC_TOKEN_URL", "GOLDENHUB_OIDC_USERINFO_URL")
missing = [name for name in REQUIRED if not os.environ.get(name)]
if missing:
    raise SystemExit(f"{__file__}: set {', '.join(missing)} (see docs/sso.md); the hub did not start")
allow = os.environ.get("GOLDENHUB_OIDC_ALLOW", "roster")
if allow not in ("roster", "everyone"):
    raise SystemExit(f"GOLDENHUB_OIDC_ALLOW is {allow!r}; allowed: roster, everyone")
try:
    with open(os.environ["GOLDENHUB_OIDC_CLIENT_SECRET_FILE"], encoding="utf-8") as f:
        client_secret = f.read().strip()
except OSError as e:
    raise SystemExit(f"GOLDENHUB_OIDC_CLIENT_SECRET_FILE cannot be read ({e.strerror}); it must name a file "
                     "holding the client secret") from None

c.JupyterHub.authenticator_class = "generic-oauth"
c.JupyterHub.template_vars.update({"goldenhub_auth": "sso"})  # the login page: no local-password hint
c.GenericOAuthenticator.login_service = os.environ.get("GOLDENHUB_OIDC_NAME", "your institution")
c.GenericOAuthenticator.client_id = os.environ["GOLDENHUB_OIDC_CLIENT_ID"]
c.GenericOAuthenticator.client_secret = client_secret
c.GenericOAuthenticator.oauth_callback_url = os.environ["GOLDENHUB_PUBLIC_URL"].rstrip("/") + "/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = os.environ["GOLDENHUB_OIDC_AUTHORIZE_URL"]
c.GenericOAuthenticator.token_url = os.environ["GOLDENHUB_OIDC_TOKEN_URL"]
c.GenericOAuthenticator.userdata_url = os.environ["GOLDENHUB_OIDC_USERINFO_URL"]
c.GenericOAuthenticator.scope = ["openid", "profile", "email"]
c.GenericOAuthenticator.username_claim = os.environ.get("GOLDENHUB_OIDC_USERNAME_CLAIM", "preferred_username")
c.GenericOAuthenticator.allow_all = allow == "everyone"
c.GenericOAuthenticator.allow_existing_users = True  # roster-created accounts may log in

groups_claim = os.environ.get("GOLDENHUB_OIDC_GROUPS_CLAIM", "")
if groups_claim:
    prefix = os.environ.get("GOLDENHUB_OIDC_COURSE_PREFIX", "goldenhub-course:")
    course = re.compile(re.escape(prefix) + f"({ID_RE.pattern})(:staff)?")

    def course_groups(auth_state: dict) -> list[str]:
        """The provider's groups that name a course, as goldenhub's course groups
        (hub_ext.contract.course_group / staff_group); every other group is ignored."""
        claimed = (auth_state.get("oauth_user") or {}).get(groups_claim) or []
        if not isinstance(claimed, list):
            return []
        found = (course.fullmatch(g) for g in claimed[:500] if isinstance(g, str))
        return sorted({contract.staff_group(m[1]) if m[2] else contract.course_group(m[1]) for m in found if m})

    c.GenericOAuthenticator.manage_groups = True  # the caveat above: the provider owns memberships
    c.GenericOAuthenticator.auth_state_groups_key = course_groups
