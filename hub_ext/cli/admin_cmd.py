"""`goldenhub servers|reset|backups|db ...`: the admin pages' operations from a terminal.

`servers`, `reset` and `backups` go through the hub's REST API (/hub/api) and the goldenhub
service's API (/services/goldenhub/api) with an admin's token, so they obey the same scopes
and leave the same audit trail as the pages. `servers logs` reads Docker on the hub's host
(there is no API for logs yet). `db` works on the service database directly.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from dataclasses import dataclass
from urllib.parse import quote

from hub_ext import contract, i18n
from hub_ext.cli.language import pad, text_width
from hub_ext.hubclient import HubAPI, HubAPIError
from hub_ext.i18n import N_, _
from hub_ext.i18n.format import size_text, when_text

TIMEOUT = 30  # seconds for one API call
LONG_TIMEOUT = 900  # seconds for resets and restores, which copy homes
STOP_TIMEOUT = 120  # seconds to wait for a server to stop
SERVICE_API = "/services/goldenhub/api"


class CommandError(Exception):
    """A message for the admin; the command exits 1 without a traceback."""


def command(run):
    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CommandError as e:
            print(f"goldenhub {args.command}: {e}", file=sys.stderr)
            return 1
    return guarded


@dataclass
class Client:
    """The hub's and the goldenhub service's REST APIs, called with one token through the
    service's own async client (hub_ext.hubclient), one asyncio.run per call."""

    hub_url: str
    token: str

    def call(self, method: str, path: str, *, ok=(200, 201, 202, 204), timeout: float = TIMEOUT,
             json: dict | None = None, params: dict | None = None, headers: dict | None = None):
        api = HubAPI(self.hub_url, self.token)
        try:
            # The service answers in the command's language (its sentences are printed as they come).
            headers = {"Accept-Language": i18n.html_lang(), **(headers or {})}
            return asyncio.run(api.request(method, path, json, ok, params=params, headers=headers, timeout=timeout))
        except HubAPIError as e:
            raise self.explain(e, method, path, timeout) from None

    def explain(self, e: HubAPIError, method: str, path: str, timeout: float) -> CommandError:
        if e.status == 504 and not e.reached:
            return CommandError(_("%(request)s got no answer within %(seconds)d s",
                                  request=f"{method} {self.hub_url + path}", seconds=timeout))
        if not e.reached:
            return CommandError(_("Cannot reach the hub at %(url)s (%(problem)s). Is it running? Set --hub-url or "
                                  "GOLDENHUB_HUB_URL.", url=self.hub_url, problem=e))
        return CommandError(f"{e} (HTTP {e.status} from {method} {path.split('?')[0]})")  # for the admin: the detail

    def hub(self, method: str, path: str, **kwargs):
        return self.call(method, "/hub/api" + path, **kwargs)

    def service(self, method: str, path: str, **kwargs):
        return self.call(method, SERVICE_API + path, **kwargs)

    def hub_items(self, path: str) -> list:
        """Every item of a paginated hub collection (the hub sends at most 200 a page)."""
        try:
            return asyncio.run(HubAPI(self.hub_url + "/hub/api", self.token).items(path))
        except HubAPIError as e:
            raise self.explain(e, "GET", "/hub/api" + path, TIMEOUT) from None


def make_client(args: argparse.Namespace) -> Client:
    hub_url = (args.hub_url or os.environ.get("GOLDENHUB_HUB_URL") or "http://127.0.0.1:8000").rstrip("/")
    token = args.token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise CommandError(_("No API token. Log in as an admin, make one at %(url)s, then set "
                             "JUPYTERHUB_API_TOKEN=<token> (or pass --token).", url=f"{hub_url}/hub/token"))
    return Client(hub_url, token)


def confirm(args: argparse.Namespace, expected: str, question: str) -> None:
    """Ask the admin to type `expected` (unless --yes); refuse on anything else."""
    if args.yes:
        return
    print(question + "\n" + _("Type %(expected)s to confirm: ", expected=expected), end="", file=sys.stderr,
          flush=True)
    answer = sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        print(file=sys.stderr)  # no echoed newline after a piped answer
    if answer != expected:
        said = _("got %(answer)s", answer=repr(answer)) if answer else _("no answer")
        raise CommandError(_("Not confirmed (%(answer)s); nothing changed. Type %(expected)s at the prompt, or pass "
                             "--yes.", answer=said, expected=expected))


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(text_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(pad(cell, w) for cell, w in zip(row, widths)).rstrip())


def short_time(iso: str | None) -> str:
    """A time as every goldenhub page and command writes it (hub_ext.i18n.format)."""
    return when_text(iso, empty="-")


def human_size(size: int | None) -> str:
    return size_text(size, empty="-")


RESULT_WORDS = {"ok": N_("ok"), "failed": N_("failed"), "refused": N_("refused")}  # the API's result values


def result_word(result: str) -> str:
    return _(RESULT_WORDS[result]) if result in RESULT_WORDS else result


def report(results: list[dict]) -> int:
    """Print each result (its word in the command's language); 1 if any failed."""
    for r in results:
        who = f"{r['user']}: " if r.get("user") else ""
        print(f"{who}{result_word(r['result'])}: {r.get('message', '')}")
    return 1 if any(r["result"] != "ok" for r in results) else 0


# --- servers -------------------------------------------------------------------------------

def server_status(server: dict) -> str:
    """One word, as the pages say it: running, pending or stopped (translated)."""
    if server.get("ready"):
        return _("running")
    return _("pending") if server.get("pending") else _("stopped")


@command
def list_servers(args: argparse.Namespace) -> int:
    client = make_client(args)
    users = client.hub_items("/users?include_stopped_servers=1")
    try:
        courses = {t["id"]: t["course"] for t in client.service("GET", "/templates")["templates"]}
    except CommandError as e:
        print(_("warning: courses unknown, the goldenhub service did not list templates: %(problem)s", problem=e),
              file=sys.stderr)
        courses = {}
    rows = []
    for user in users:
        for name, server in sorted(user.get("servers", {}).items()):
            if not contract.ever_started(server) and not server.get("ready") and not server.get("pending"):
                continue  # never started: nothing to show
            template = contract.template_of(server)
            course = courses.get(template, "")
            if args.course and course != args.course:
                continue
            rows.append((user["name"] + (f"/{name}" if name else ""), server_status(server), template or "-",
                         course or "-", ",".join(contract.gpus_of(server)) or "-", short_time(server.get("last_activity"))))
    if not rows:
        print(_("No servers in course %(course)s", course=args.course) if args.course else _("No servers"))
        return 0
    print_table((_("USER"), _("STATUS"), _("TEMPLATE"), _("COURSE"), _("GPUS"), _("LAST ACTIVITY")), rows)
    return 0


@command
def stop_server(args: argparse.Namespace) -> int:
    client = make_client(args)
    client.hub("GET", f"/users/{quote(args.user, safe='')}")  # an unknown user: the hub's 404, as a message
    hub = HubAPI(client.hub_url + "/hub/api", client.token)
    try:
        stopped = asyncio.run(hub.stop_server(args.user, timeout=STOP_TIMEOUT))
    except HubAPIError as e:
        if e.status == 504 and e.reached:  # the hub took the stop but the server is still there
            raise CommandError(_("%(user)s's server did not stop within %(seconds)d s; see the hub's log",
                                 user=args.user, seconds=STOP_TIMEOUT)) from None
        raise client.explain(e, "GET", f"/hub/api/users/{quote(args.user, safe='')}", TIMEOUT) from None
    if not stopped:
        print(_("%(user)s has no running server", user=args.user))
        return 0
    print(_("stopped %(user)s's server (their files are kept)", user=args.user))
    return 0


@command
def server_logs(args: argparse.Namespace) -> int:
    import docker

    prefix = args.prefix or os.environ.get("GOLDENHUB_PREFIX") or "goldenhub"
    try:
        found = docker.from_env().containers.list(all=True, filters={"label": contract.label_filter(contract.LABEL_USER, args.user)})
        containers = [c for c in found if c.name.startswith(prefix + "-")]
        logs = [(c.name, c.logs(tail=args.tail if args.tail is not None else "all")) for c in containers]
    except docker.errors.DockerException as e:
        raise CommandError(_("Cannot read Docker: %(problem)s. Logs come from the Docker Engine on the hub's host "
                             "(there is no API for them yet): run this there, as a user who may use Docker.",
                             problem=e)) from None
    if not logs:
        raise CommandError(_("No container of %(user)s (prefix %(prefix)s): their server is not running "
                             "(containers are removed at stop)", user=args.user, prefix=prefix))
    for name, text in logs:
        if len(logs) > 1:
            print(f"==> {name} <==")
        sys.stdout.write(text.decode(errors="replace"))
    return 0


# --- resets and backups ----------------------------------------------------------------------

@command
def reset(args: argparse.Namespace) -> int:
    if bool(args.user) == args.all:
        raise CommandError(_("Name one USER, or pass --all for every student of the course"))
    client = make_client(args)
    if args.all:
        confirm(args, args.course, _("This resets every student of course %(course)s: running servers stop and each "
                                     "home moves to a dated backup.", course=args.course))
        body = {"course": args.course, "all": True, "confirm": args.course}
    else:
        body = {"course": args.course, "user": args.user}
    data = client.service("POST", "/resets", json=body, ok=(200, 500), timeout=LONG_TIMEOUT)
    if not isinstance(data, dict) or "results" not in data:
        raise CommandError((data or {}).get("message") or _("The service failed without saying why"))
    if not data["results"]:
        print(_("No student has a home in course %(course)s: nothing to reset", course=args.course))
    return report(data["results"])


@command
def list_backups(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("user", args.user), ("course", args.course)) if v}
    backups = make_client(args).service("GET", "/backups", params=params)["backups"]
    if not backups:
        print(_("No backups"))
        return 0
    print_table((_("BACKUP"), _("USER"), _("COURSE"), _("CREATED"), _("SIZE")),
                [(b["volume"], b["user"], b["course"], short_time(b["created"]), human_size(b.get("size_bytes")))
                 for b in backups])
    return 0


@command
def restore_backup(args: argparse.Namespace) -> int:
    data = make_client(args).service("POST", f"/backups/{quote(args.name, safe='')}/restore",
                                      timeout=LONG_TIMEOUT)  # a failure: its sentence, exit 1
    return report([data])


@command
def delete_backup(args: argparse.Namespace) -> int:
    client = make_client(args)
    confirm(args, args.name, _("Deleting backup %(name)s cannot be undone.", name=args.name))
    data = client.service("DELETE", f"/backups/{quote(args.name, safe='')}", params={"confirm": args.name},
                          timeout=LONG_TIMEOUT)
    return report([data])


# --- the service database ----------------------------------------------------------------------

def database_url(args: argparse.Namespace) -> str:
    from hub_ext.hubconfig import Settings

    return args.db_url or Settings.from_env().db_url


def on_database(action):
    """Run `action(url, shown_url)`, turning database errors into messages."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError as AlembicError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    @command
    def run(args: argparse.Namespace) -> int:
        url = database_url(args)
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            raise CommandError(_("Not a database URL: %(url)s (e.g. sqlite:////path/goldenhub.sqlite or "
                                 "postgresql+psycopg://user:password@host/goldenhub)", url=repr(url))) from None
        try:
            return action(args, url, shown)
        except AlembicError as e:
            from hub_ext.service import db

            known = [r.revision for r in ScriptDirectory.from_config(db.alembic_config(url)).walk_revisions()]
            raise CommandError(_("%(problem)s (revisions: base, %(revisions)s)", problem=e,
                                 revisions=", ".join(reversed(known)))) from None
        except SQLAlchemyError as e:
            raise CommandError(_("Cannot use the database %(url)s: %(problem)s", url=shown,
                                 problem=getattr(e, "orig", None) or e)) from None
    return run


def db_current(args, url: str, shown: str) -> int:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from hub_ext.service import db

    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and database and not os.path.exists(database):
        raise CommandError(_("No database at %(file)s yet: the service creates it at its first start", file=database))
    head = db.head_revision()
    current = db.current_revision(create_engine(url))
    if current == head:
        print(_("%(url)s: schema %(revision)s (the newest)", url=shown, revision=current))
    else:
        print(_("%(url)s: schema %(revision)s; this goldenhub needs %(head)s: back it up, then run goldenhub db "
                "upgrade", url=shown, revision=current or _("none"), head=head))
    return 0


def db_upgrade(args, url: str, shown: str) -> int:
    from sqlalchemy import create_engine

    from hub_ext.service import db

    before = db.current_revision(create_engine(url))
    db.upgrade(url)
    after = db.current_revision(create_engine(url))
    print(_("%(url)s: already at schema %(revision)s", url=shown, revision=after) if before == after else
          _("%(url)s: upgraded from schema %(before)s to %(after)s", url=shown, before=before or _("none"),
            after=after))
    return 0


def db_downgrade(args, url: str, shown: str) -> int:
    from sqlalchemy import create_engine

    from hub_ext.service import db

    confirm(args, args.revision, _("Downgrading %(url)s to schema %(revision)s drops the tables of newer schemas "
                                   "with their data (e.g. runtime templates). Back it up first.", url=shown,
                                   revision=args.revision))
    db.downgrade(url, args.revision)
    print(_("%(url)s: downgraded to schema %(revision)s", url=shown,
            revision=db.current_revision(create_engine(url)) or _("none")))
    return 0


# --- the parser ----------------------------------------------------------------------------------

def api_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--hub-url", help=_("the hub's public URL (default: $GOLDENHUB_HUB_URL or http://127.0.0.1:8000)"))
    p.add_argument("--token", help=_("an admin's API token, made at /hub/token (default: $JUPYTERHUB_API_TOKEN, "
                                   "which keeps it out of the process list)"))
    return p


def add_parser(commands) -> None:
    api = [api_options()]

    servers = commands.add_parser("servers", help=_("students' servers: list, stop, logs"))
    sub = servers.add_subparsers(dest="servers_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", parents=api, help=_("one line per server: user, status, template, course, GPUs, last activity"))
    p.add_argument("--course", help=_("only servers of this course"))
    p.set_defaults(run=list_servers)
    p = sub.add_parser("stop", parents=api, help=_("stop a student's server (their files are kept)"))
    p.add_argument("user")
    p.set_defaults(run=stop_server)
    p = sub.add_parser("logs", help=_("a student's container log, read from Docker on the hub's host"),
                       description=_("Print a student's container log. There is no API for logs yet: this reads "
                                   "the local Docker Engine (containers labelled goldenhub.user=USER), so run it "
                                   "on the hub's host as a user who may use Docker."))
    p.add_argument("user")
    p.add_argument("--tail", type=int, metavar="N", help=_("only the last N lines"))
    p.add_argument("--prefix", help=_("the hub's Docker name prefix (default: $GOLDENHUB_PREFIX or goldenhub)"))
    p.set_defaults(run=server_logs)

    p = commands.add_parser("reset", parents=api, help=_("reset a student's environment, or a whole course's"),
                            description=_("Stop the server and move the home to a dated backup, so the next start "
                                        "is fresh. Prints each result; exits 1 if any failed. With --all, "
                                        "students you may not reset are listed as refused (exit 1 too)."))
    p.add_argument("user", nargs="?", help=_("the student to reset"))
    p.add_argument("--course", required=True, help=_("the course whose environment to reset"))
    p.add_argument("--all", action="store_true", help=_("every student with a home in the course"))
    p.add_argument("--yes", action="store_true", help=_("do not ask to type the course id for --all"))
    p.set_defaults(run=reset)

    backups = commands.add_parser("backups", help=_("homes kept by resets and restores: list, restore, delete"))
    sub = backups.add_subparsers(dest="backups_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", parents=api, help=_("backups, newest first"))
    p.add_argument("--user", help=_("only this student's"))
    p.add_argument("--course", help=_("only this course's"))
    p.set_defaults(run=list_backups)
    p = sub.add_parser("restore", parents=api, help=_("make a backup its student's home again (the current home is backed up first)"))
    p.add_argument("name", help=_("the backup's name, as `backups list` shows it"))
    p.set_defaults(run=restore_backup)
    p = sub.add_parser("delete", parents=api, help=_("delete a backup for good"))
    p.add_argument("name", help=_("the backup's name, as `backups list` shows it"))
    p.add_argument("--yes", action="store_true", help=_("do not ask to type the name"))
    p.set_defaults(run=delete_backup)

    database = commands.add_parser("db", help=_("the goldenhub service's database schema"))
    sub = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_url = argparse.ArgumentParser(add_help=False)
    db_url.add_argument("--db-url", help=_("SQLAlchemy URL (default: $GOLDENHUB_DB_URL, else goldenhub.sqlite "
                                         "in the state directory)"))
    p = sub.add_parser("current", parents=[db_url], help=_("the database's schema revision and the one this goldenhub needs"))
    p.set_defaults(run=on_database(db_current))
    p = sub.add_parser("upgrade", parents=[db_url], help=_("migrate the database to the newest schema (back it up first)"))
    p.set_defaults(run=on_database(db_upgrade))
    p = sub.add_parser("downgrade", parents=[db_url], help=_("migrate the database back to REVISION ('base': empty)"))
    p.add_argument("revision")
    p.add_argument("--yes", action="store_true", help=_("do not ask to type the revision"))
    p.set_defaults(run=on_database(db_downgrade))
