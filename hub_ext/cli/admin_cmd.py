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

from hub_ext import contract
from hub_ext.hubclient import HubAPI, HubAPIError

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
            return asyncio.run(api.request(method, path, json, ok, params=params, headers=headers, timeout=timeout))
        except HubAPIError as e:
            raise self.explain(e, method, path, timeout) from None

    def explain(self, e: HubAPIError, method: str, path: str, timeout: float) -> CommandError:
        if e.status == 504 and not e.reached:
            return CommandError(f"{method} {self.hub_url + path} got no answer within {timeout:.0f} s")
        if not e.reached:
            return CommandError(f"Cannot reach the hub at {self.hub_url} ({e}). "
                                "Is it running? Set --hub-url or GOLDENHUB_HUB_URL.")
        return CommandError(f"{e} (HTTP {e.status} from {method} {path.split('?')[0]})")

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
        raise CommandError(f"No API token. Log in as an admin, make one at {hub_url}/hub/token, "
                           "then set JUPYTERHUB_API_TOKEN=<token> (or pass --token).")
    return Client(hub_url, token)


def confirm(args: argparse.Namespace, expected: str, question: str) -> None:
    """Ask the admin to type `expected` (unless --yes); refuse on anything else."""
    if args.yes:
        return
    print(f"{question}\nType {expected} to confirm: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        print(file=sys.stderr)  # no echoed newline after a piped answer
    if answer != expected:
        raise CommandError(f"Not confirmed ({'no answer' if not answer else f'got {answer!r}'}); nothing changed. "
                           f"Type {expected} at the prompt, or pass --yes.")


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def short_time(iso: str | None) -> str:
    return f"{iso[:10]} {iso[11:19]}Z" if iso else "-"


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def report(results: list[dict]) -> int:
    """Print each result; 1 if any failed."""
    for r in results:
        who = f"{r['user']}: " if r.get("user") else ""
        print(f"{who}{r['result']}: {r.get('message', '')}")
    return 1 if any(r["result"] != "ok" for r in results) else 0


# --- servers -------------------------------------------------------------------------------

def server_status(server: dict) -> str:
    if server.get("ready"):
        return "ready"
    return "pending" if server.get("pending") else "stopped"


@command
def list_servers(args: argparse.Namespace) -> int:
    client = make_client(args)
    users = client.hub_items("/users?include_stopped_servers=1")
    try:
        courses = {t["id"]: t["course"] for t in client.service("GET", "/templates")["templates"]}
    except CommandError as e:
        print(f"warning: courses unknown, the goldenhub service did not list templates: {e}", file=sys.stderr)
        courses = {}
    rows = []
    for user in users:
        for name, server in sorted(user.get("servers", {}).items()):
            if not contract.ever_started(server) and server_status(server) == "stopped":
                continue  # never started: nothing to show
            template = contract.template_of(server)
            course = courses.get(template, "")
            if args.course and course != args.course:
                continue
            rows.append((user["name"] + (f"/{name}" if name else ""), server_status(server), template or "-",
                         course or "-", ",".join(contract.gpus_of(server)) or "-", short_time(server.get("last_activity"))))
    if not rows:
        print("No servers" + (f" in course {args.course}" if args.course else ""))
        return 0
    print_table(("USER", "STATUS", "TEMPLATE", "COURSE", "GPUS", "LAST ACTIVITY"), rows)
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
            raise CommandError(f"{args.user}'s server did not stop within {STOP_TIMEOUT} s; see the hub's log") from None
        raise client.explain(e, "GET", f"/hub/api/users/{quote(args.user, safe='')}", TIMEOUT) from None
    if not stopped:
        print(f"{args.user} has no running server")
        return 0
    print(f"stopped {args.user}'s server (their files are kept)")
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
        raise CommandError(f"Cannot read Docker: {e}. Logs come from the Docker Engine on the hub's host "
                           "(there is no API for them yet): run this there, as a user who may use Docker.") from None
    if not logs:
        raise CommandError(f"No container of {args.user} (prefix {prefix}): their server is not running "
                           "(containers are removed at stop)")
    for name, text in logs:
        if len(logs) > 1:
            print(f"==> {name} <==")
        sys.stdout.write(text.decode(errors="replace"))
    return 0


# --- resets and backups ----------------------------------------------------------------------

@command
def reset(args: argparse.Namespace) -> int:
    if bool(args.user) == args.all:
        raise CommandError("Name one USER, or pass --all for every student of the course")
    client = make_client(args)
    if args.all:
        confirm(args, args.course, f"This resets every student of course {args.course}: running servers stop "
                                   "and each home moves to a dated backup.")
        body = {"course": args.course, "all": True, "confirm": args.course}
    else:
        body = {"course": args.course, "user": args.user}
    data = client.service("POST", "/resets", json=body, ok=(200, 500), timeout=LONG_TIMEOUT)
    if not isinstance(data, dict) or "results" not in data:
        raise CommandError((data or {}).get("message", "The service failed without saying why"))
    if not data["results"]:
        print(f"No student has a home in course {args.course}: nothing to reset")
    return report(data["results"])


@command
def list_backups(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("user", args.user), ("course", args.course)) if v}
    backups = make_client(args).service("GET", "/backups", params=params)["backups"]
    if not backups:
        print("No backups")
        return 0
    print_table(("BACKUP", "USER", "COURSE", "CREATED", "SIZE"),
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
    confirm(args, args.name, f"Deleting backup {args.name} cannot be undone.")
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
            raise CommandError(f"Not a database URL: {url!r} (e.g. sqlite:////path/goldenhub.sqlite or "
                               "postgresql+psycopg://user:password@host/goldenhub)") from None
        try:
            return action(args, url, shown)
        except AlembicError as e:
            from hub_ext.service import db

            known = [r.revision for r in ScriptDirectory.from_config(db.alembic_config(url)).walk_revisions()]
            raise CommandError(f"{e} (revisions: base, {', '.join(reversed(known))})") from None
        except SQLAlchemyError as e:
            raise CommandError(f"Cannot use the database {shown}: {getattr(e, 'orig', None) or e}") from None
    return run


def db_current(args, url: str, shown: str) -> int:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from hub_ext.service import db

    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and database and not os.path.exists(database):
        raise CommandError(f"No database at {database} yet: the service creates it at its first start")
    head = db.head_revision()
    current = db.current_revision(create_engine(url))
    if current == head:
        print(f"{shown}: schema {current} (the newest)")
    else:
        print(f"{shown}: schema {current or 'none'}; this goldenhub needs {head}: back it up, then run "
              "goldenhub db upgrade")
    return 0


def db_upgrade(args, url: str, shown: str) -> int:
    from sqlalchemy import create_engine

    from hub_ext.service import db

    before = db.current_revision(create_engine(url))
    db.upgrade(url)
    after = db.current_revision(create_engine(url))
    print(f"{shown}: " + (f"already at schema {after}" if before == after else
                          f"upgraded from schema {before or 'none'} to {after}"))
    return 0


def db_downgrade(args, url: str, shown: str) -> int:
    from sqlalchemy import create_engine

    from hub_ext.service import db

    confirm(args, args.revision, f"Downgrading {shown} to schema {args.revision} drops the tables of newer "
                                 "schemas with their data (e.g. runtime templates). Back it up first.")
    db.downgrade(url, args.revision)
    print(f"{shown}: downgraded to schema {db.current_revision(create_engine(url)) or 'none'}")
    return 0


# --- the parser ----------------------------------------------------------------------------------

def api_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--hub-url", help="the hub's public URL (default: $GOLDENHUB_HUB_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="an admin's API token, made at /hub/token (default: $JUPYTERHUB_API_TOKEN, "
                                   "which keeps it out of the process list)")
    return p


def add_parser(commands) -> None:
    api = [api_options()]

    servers = commands.add_parser("servers", help="students' servers: list, stop, logs")
    sub = servers.add_subparsers(dest="servers_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", parents=api, help="one line per server: user, status, template, course, GPUs, last activity")
    p.add_argument("--course", help="only servers of this course")
    p.set_defaults(run=list_servers)
    p = sub.add_parser("stop", parents=api, help="stop a student's server (their files are kept)")
    p.add_argument("user")
    p.set_defaults(run=stop_server)
    p = sub.add_parser("logs", help="a student's container log, read from Docker on the hub's host",
                       description="Print a student's container log. There is no API for logs yet: this reads "
                                   "the local Docker Engine (containers labelled goldenhub.user=USER), so run it "
                                   "on the hub's host as a user who may use Docker.")
    p.add_argument("user")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("--prefix", help="the hub's Docker name prefix (default: $GOLDENHUB_PREFIX or goldenhub)")
    p.set_defaults(run=server_logs)

    p = commands.add_parser("reset", parents=api, help="reset a student's environment, or a whole course's",
                            description="Stop the server and move the home to a dated backup, so the next start "
                                        "is fresh. Prints each result; exits 1 if any failed. With --all, "
                                        "students you may not reset are listed as refused (exit 1 too).")
    p.add_argument("user", nargs="?", help="the student to reset")
    p.add_argument("--course", required=True, help="the course whose environment to reset")
    p.add_argument("--all", action="store_true", help="every student with a home in the course")
    p.add_argument("--yes", action="store_true", help="do not ask to type the course id for --all")
    p.set_defaults(run=reset)

    backups = commands.add_parser("backups", help="homes kept by resets and restores: list, restore, delete")
    sub = backups.add_subparsers(dest="backups_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", parents=api, help="backups, newest first")
    p.add_argument("--user", help="only this student's")
    p.add_argument("--course", help="only this course's")
    p.set_defaults(run=list_backups)
    p = sub.add_parser("restore", parents=api, help="make a backup its student's home again (the current home is backed up first)")
    p.add_argument("name", help="the backup's name, as `backups list` shows it")
    p.set_defaults(run=restore_backup)
    p = sub.add_parser("delete", parents=api, help="delete a backup for good")
    p.add_argument("name", help="the backup's name, as `backups list` shows it")
    p.add_argument("--yes", action="store_true", help="do not ask to type the name")
    p.set_defaults(run=delete_backup)

    database = commands.add_parser("db", help="the goldenhub service's database schema")
    sub = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_url = argparse.ArgumentParser(add_help=False)
    db_url.add_argument("--db-url", help="SQLAlchemy URL (default: $GOLDENHUB_DB_URL, else goldenhub.sqlite "
                                         "in the state directory)")
    p = sub.add_parser("current", parents=[db_url], help="the database's schema revision and the one this goldenhub needs")
    p.set_defaults(run=on_database(db_current))
    p = sub.add_parser("upgrade", parents=[db_url], help="migrate the database to the newest schema (back it up first)")
    p.set_defaults(run=on_database(db_upgrade))
    p = sub.add_parser("downgrade", parents=[db_url], help="migrate the database back to REVISION ('base': empty)")
    p.add_argument("revision")
    p.add_argument("--yes", action="store_true", help="do not ask to type the revision")
    p.set_defaults(run=on_database(db_downgrade))
