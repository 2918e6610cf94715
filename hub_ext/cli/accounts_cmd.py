"""`goldenhub accounts reset-password USER`: an admin resets a local account's password.

It calls the goldenhub service's API (POST api/accounts/<user>/password-reset) with an
admin's token, so it obeys the same rule (the unfiltered custom:goldenhub:accounts scope)
and leaves the same audit entry as the admin pages. The student is logged out everywhere
and sets a new password at their next login; their files and server are not touched.
"""

from __future__ import annotations

import argparse
from urllib.parse import quote

from hub_ext.cli.admin_cmd import api_options, command, confirm, make_client
from hub_ext.i18n import _


@command
def reset_password(args: argparse.Namespace) -> int:
    client = make_client(args)
    confirm(args, args.user, _("%(user)s will be logged out everywhere and loses their password: whoever logs in "
                               "next as %(user)s chooses a new one.", user=args.user))
    data = client.service("POST", f"/accounts/{quote(args.user, safe='')}/password-reset")
    print(data.get("message") or _("%(user)s: password reset", user=args.user))
    return 0


def add_parser(commands) -> None:
    accounts = commands.add_parser("accounts", help=_("local accounts: reset a password"))
    sub = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    p = sub.add_parser("reset-password", parents=[api_options()],
                       help=_("forget USER's password and log them out; they set a new one at their next login"),
                       description=_("Forget a local account's password and log its owner out everywhere; the "
                                   "next login sets a new one. Administrators' accounts are refused (an admin "
                                   "changes their own at /hub/auth/change-password). Needs an admin's token."))
    p.add_argument("user", help=_("the account's user name"))
    p.add_argument("--yes", action="store_true", help=_("do not ask to type the user name"))
    p.set_defaults(run=reset_password)
