"""`goldenhub usage grant COURSE USER HOURS [--reason TEXT]`: give a student extra GPU-hours
in a course for the current quota period, through the goldenhub service's API (POST
api/usage/grants), so it obeys the same rule (the course's instructors and admins) and is
audited the same way as the usage page's grant form.
"""

from __future__ import annotations

import argparse

from hub_ext.cli.admin_cmd import CommandError, api_options, command, make_client
from hub_ext.i18n import _


def hours_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100000:  # NaN fails too
        raise argparse.ArgumentTypeError(_("HOURS must be a number above 0 and at most 100000, e.g. 5 or 2.5; "
                                           "got %(value)s", value=repr(text[:20])))
    return value


@command
def grant(args: argparse.Namespace) -> int:
    client = make_client(args)
    result = client.service("POST", "/usage/grants", json={"course": args.course, "user": args.user,
                                                           "hours": args.hours, "reason": args.reason or ""})
    if not isinstance(result, dict):
        raise CommandError(_("The service gave an unexpected answer; nothing is known to have changed."))
    hours = "%g" % result["hours"]
    print(_("Granted %(hours)s extra hours to %(user)s in %(course)s.", hours=hours, user=result["user"],
            course=result["course"]))
    return 0


def add_parser(commands) -> None:
    usage = commands.add_parser("usage", help=_("GPU-hour usage: grant extra hours"))
    sub = usage.add_subparsers(dest="usage_command", required=True, metavar="ACTION")
    p = sub.add_parser("grant", parents=[api_options()], help=_("give a student extra hours in a course"),
                       description=_("Give a student extra hours in a course's quota for the current period "
                                     "(term or week). Needs an admin's token or one of the course's instructors'. "
                                     "Audited."))
    p.add_argument("course", help=_("the course id"))
    p.add_argument("user", help=_("the student's user name"))
    p.add_argument("hours", type=hours_value, help=_("extra hours, e.g. 5 or 2.5"))
    p.add_argument("--reason", help=_("why, for the audit log (at most 500 characters)"))
    p.set_defaults(run=grant)
