"""`goldenhub sessions schedule COURSE --at TIME --minutes N [--template T] [--lead N]`,
`goldenhub sessions list COURSE` and `goldenhub sessions cancel ID`: class sessions through
the goldenhub service's API (api/sessions), so they obey the same rule (the course's
instructors and admins) and checks as the course's Class sessions page.
"""

from __future__ import annotations

import argparse

from hub_ext.cli.admin_cmd import CommandError, api_options, command, make_client
from hub_ext.i18n import _
from hub_ext.i18n.format import when_text


def describe(s: dict) -> str:
    words = _("session %(id)d of %(course)s: %(start)s to %(end)s, template %(template)s, servers start %(lead)d "
              "minutes before", id=s["id"], course=s["course"], start=when_text(s["starts_at"]),
              end=when_text(s["ends_at"]), template=s["template"], lead=s["lead_minutes"])
    return words + (" " + _("(cancelled)") if s.get("cancelled") else "")


@command
def schedule(args: argparse.Namespace) -> int:
    body = {"course": args.course, "at": args.at, "minutes": args.minutes}
    if args.template:
        body["template"] = args.template
    if args.lead is not None:
        body["lead"] = args.lead
    made = make_client(args).service("POST", "/sessions", json=body)
    if not isinstance(made, dict):
        raise CommandError(_("The service gave an unexpected answer; nothing is known to have changed."))
    print(_("Scheduled %(session)s.", session=describe(made)))
    return 0


@command
def list_sessions(args: argparse.Namespace) -> int:
    found = make_client(args).service("GET", "/sessions", params={"course": args.course})
    sessions = (found or {}).get("sessions", [])
    if not sessions:
        print(_("No session of %(course)s is scheduled.", course=args.course))
    for s in sessions:
        c = s.get("counts", {})
        print(describe(s))
        print("  " + _("pre-started %(started)d, opened %(opened)d, stopped unopened %(stopped)d, failed %(failed)d",
                       started=c.get("pre-started", 0) + c.get("opened", 0) + c.get("stopped-unopened", 0),
                       opened=c.get("opened", 0), stopped=c.get("stopped-unopened", 0), failed=c.get("failed", 0)))
    return 0


@command
def cancel(args: argparse.Namespace) -> int:
    done = make_client(args).service("DELETE", f"/sessions/{args.id}")
    print(_("Cancelled %(session)s.", session=describe(done)))
    return 0


def add_parser(commands) -> None:
    sessions = commands.add_parser("sessions", help=_("class sessions: students' servers ready when a class starts"))
    sub = sessions.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    p = sub.add_parser("schedule", parents=[api_options()], help=_("schedule a class session"),
                       description=_("Schedule a class session: the enrolled students' servers start before it, a few "
                                     "at a time; those nobody opens by 20 minutes in stop (files are kept). Needs an "
                                     "admin's token or one of the course's instructors'."))
    p.add_argument("course", help=_("the course id"))
    p.add_argument("--at", required=True, help=_("the start, ISO 8601 with its time zone, e.g. 2026-11-27T09:00Z"))
    p.add_argument("--minutes", required=True, type=int, help=_("the duration in minutes (30 to 720)"))
    p.add_argument("--template", help=_("the template to start (default: the course's first)"))
    p.add_argument("--lead", type=int, help=_("minutes before the start the servers start (0 to 120, default 10)"))
    p.set_defaults(run=schedule)
    p = sub.add_parser("list", parents=[api_options()], help=_("a course's sessions not yet ended"))
    p.add_argument("course", help=_("the course id"))
    p.set_defaults(run=list_sessions)
    p = sub.add_parser("cancel", parents=[api_options()], help=_("cancel a session"))
    p.add_argument("id", type=int, help=_("the session's number, as `list` shows it"))
    p.set_defaults(run=cancel)
