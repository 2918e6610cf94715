"""`goldenhub term close COURSE [--export DIR] [--yes]`: end of term from a terminal.

The close itself goes through the goldenhub service's API (POST
api/courses/<course>/term-close, hub_ext.homes.term does it), so it obeys the same scopes
and leaves the same audit trail as the page. `--export DIR` writes one tar per student of
the backups this close made into a new DIR/<course>-<UTC date time>/ on this machine: it
reads the backups from the local Docker Engine (run it on the hub's host), and is checked
before anything is closed, so an export that cannot work changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

from hub_ext import contract
from hub_ext.cli.admin_cmd import CommandError, api_options, command, confirm, make_client, result_word
from hub_ext.i18n import N_, _, ngettext

CLOSE_TIMEOUT = 6 * 3600  # seconds: a close copies every home of the course
WHAT_HAPPENS = N_("Closing the term of %(course)s: every student's home in %(course)s moves to a dated backup "
                  "(restore it from Backups); servers stop; students are unenrolled; nothing is deleted.")


def prepare_export(directory: str):
    """The Docker client for a local export, after checking that it can work."""
    import docker

    from hub_ext.homes.resets import ResetError, ensure_helper_image

    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise CommandError(_("--export %(directory)s: not a directory; name a directory (it is made if missing). "
                             "Nothing was changed.", directory=directory))
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CommandError(_("--export %(directory)s: cannot make it (%(problem)s). Nothing was changed.",
                             directory=directory, problem=e.strerror)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CommandError(_("--export %(directory)s: not writable by you. Nothing was changed.", directory=directory))
    try:
        client = docker.from_env()
        ensure_helper_image(client, contract.helper_image())
    except docker.errors.DockerException as e:
        raise CommandError(_("--export needs the Docker Engine of the hub's host (%(problem)s); run this there as a "
                             "user who may use Docker, or leave out --export. Nothing was changed.",
                             problem=e)) from None
    except ResetError as e:
        raise CommandError(f"{e} " + _("Nothing was changed.")) from None
    return client


def export_locally(client, result: dict, directory: str, prefix: str) -> list[dict]:
    from datetime import datetime, timezone

    from hub_ext.homes import term
    from hub_ext.homes.resets import list_backups

    made = {h["backup"] for h in result["homes"] if h.get("backup")}
    if not made:
        print(_("export: no home was backed up by this close, so nothing to export"))
        return []
    dest = term.make_export_dir(Path(directory), result["course"], datetime.now(timezone.utc))
    backups = [b for b in list_backups(client, course=result["course"]) if b.volume in made]
    done, failed = term.export_backups(client, backups, dest, contract.helper_image(), prefix)
    for d in done:
        print(_("exported %(user)s: %(file)s", user=d["user"], file=d["path"]))
    print(ngettext("export: %(num)d tar file in %(directory)s", "export: %(num)d tar files in %(directory)s",
                   len(done), directory=dest))
    return failed


@command
def close(args: argparse.Namespace) -> int:
    course = args.course
    client = make_client(args)
    docker_client = prepare_export(args.export) if args.export else None
    confirm(args, course, _(WHAT_HAPPENS, course=course))
    result = client.service("POST", f"/courses/{quote(course, safe='')}/term-close",
                            json={"confirm": course, "export": False}, timeout=CLOSE_TIMEOUT)
    for h in result.get("homes", []):
        print(f"{h['user'] or '-'}: {result_word(h['result'])}: {h.get('message', '')}")
    failures = list(result.get("failures", []))
    if docker_client is not None:
        prefix = args.prefix or os.environ.get("GOLDENHUB_PREFIX") or "goldenhub"
        failures += export_locally(docker_client, result, args.export, prefix)
    for f in failures[len(result.get("failures", [])):]:
        print(_("problem: %(user)s: %(message)s", user=f["user"] or "-", message=f["message"]), file=sys.stderr)
    print(result["message"])
    return 1 if failures else 0


def add_parser(commands) -> None:
    term = commands.add_parser("term", help=_("end of term: close a course"))
    sub = term.add_subparsers(dest="term_command", required=True, metavar="ACTION")
    p = sub.add_parser("close", parents=[api_options()], help=_("stop servers, back up every home, unenrol students"),
                       description=_(WHAT_HAPPENS, course="COURSE") + " " + _(
                           "Staff stay enrolled. Prints one line per home and a summary; exits 1 if anything failed "
                           "(run it again to finish: a second close is harmless)."))
    p.add_argument("course", help=_("the course id"))
    p.add_argument("--export", metavar="DIR", help=_("also write one tar per student into a new DIR/<course>-<UTC "
                                                   "date time>/ (0700; files 0600), read from the local Docker"))
    p.add_argument("--prefix", help=_("the hub's Docker name prefix, for --export (default: $GOLDENHUB_PREFIX or goldenhub)"))
    p.add_argument("--yes", action="store_true", help=_("do not ask to type the course id"))
    p.set_defaults(run=close)
