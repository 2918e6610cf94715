"""`goldenhub enrol COURSE ROSTER.csv [--dry-run] [--sync]`: import a course roster from a terminal.

The file goes to the goldenhub service's API (POST api/courses/<course>/roster) with the
admin's (or instructor's) token, so it is validated, authorised, applied and audited exactly
as on the course page. Prints the plan (dry run) or what changed; on a bad file, every problem
with its line number, and exits 1 with nothing changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from hub_ext.accounts.roster import MAX_BYTES, MAX_ROWS
from hub_ext import i18n
from hub_ext.cli.admin_cmd import SERVICE_API, CommandError, api_options, command, make_client
from hub_ext.cli.language import pad, text_width
from hub_ext.i18n import N_, _
from hub_ext.i18n.format import size_text

TIMEOUT = 600  # seconds: a whole class's accounts and groups


async def _post(url: str, token: str, body: bytes) -> tuple[int, dict | None, str]:
    try:
        r = await AsyncHTTPClient().fetch(url, method="POST", body=body, raise_error=False, request_timeout=TIMEOUT,
                                          headers={"Authorization": f"token {token}", "Content-Type": "text/csv",
                                                   "Accept-Language": i18n.html_lang()})
    except HTTPClientError as e:
        raise OSError(str(e)) from None
    if r.code == 599:
        raise OSError(str(r.error))
    try:
        data = json.loads(r.body) if r.body else None
    except ValueError:
        data = None
    return r.code, data if isinstance(data, dict) else None, r.reason


def read_roster(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise CommandError(_("Cannot read %(file)s: %(problem)s", file=path, problem=e.strerror)) from None
    if len(data) > MAX_BYTES:
        raise CommandError(_("%(file)s is larger than %(size)s; a roster may be at most %(size)s (%(rows)d people): "
                             "split it into several files", file=path, size=size_text(MAX_BYTES), rows=MAX_ROWS))
    return data


def print_result(result: dict) -> None:
    """The plan or what was applied, one line per change."""
    f = result.get("file", {})
    print(f"{result['summary']}")
    print(_("File: %(people)s people, %(encoding)s, separated by %(separator)s; columns %(columns)s",
            people=f.get("people"), encoding=f.get("encoding"), separator=f.get("separator"),
            columns=", ".join(f.get("columns", []))))
    new = set(result.get("accounts_to_create", []))
    words = {k: _(k) for k in (N_("enrol"), N_("role"), N_("details"), N_("unenrol"), N_("kept"))}
    width = max(text_width(w) for w in words.values())
    for p in result.get("enrol", []):
        new_account = "  " + _("(new account)") if p["username"] in new else ""
        print(f"  {pad(words['enrol'], width)}  {p['username']}  {p['role']}  {p['display_name']}{new_account}")
    for p in result.get("role_changes", []):
        print(f"  {pad(words['role'], width)}  {p['username']}  {p['from']} -> {p['role']}")
    for p in result.get("detail_changes", []):
        print(f"  {pad(words['details'], width)}  {p['username']}  {p['display_name']}  {p['email']}")
    for p in result.get("unenrol", []):
        print(f"  {pad(words['unenrol'], width)}  {p['username']}  "
              + _("(%(role)s; keeps the account and homes)", role=p["role"]))
    for name in result.get("kept", []):
        print(f"  {pad(words['kept'], width)}  {name}  "
              + _("(not in the file; sync never unenrols whoever applies it)"))


@command
def enrol(args: argparse.Namespace) -> int:
    client = make_client(args)
    data = read_roster(args.roster)
    params = urlencode({"dry_run": int(args.dry_run), "sync": int(args.sync)})
    url = f"{client.hub_url}{SERVICE_API}/courses/{quote(args.course, safe='')}/roster?{params}"
    try:
        status, answer, reason = asyncio.run(_post(url, client.token, data))
    except OSError as e:
        raise CommandError(_("Cannot reach the hub at %(url)s (%(problem)s). Is it running? Set --hub-url or "
                             "GOLDENHUB_HUB_URL.", url=client.hub_url, problem=e)) from None
    if status == 200 and answer:
        print_result(answer)
        return 0
    message = (answer or {}).get("message") or reason
    problems = (answer or {}).get("problems") or []
    if problems:
        print(f"goldenhub enrol: {message}", file=sys.stderr)
        for problem in problems:
            print(f"  {args.roster}: {problem}", file=sys.stderr)
        return 1
    raise CommandError(f"{message} (HTTP {status})")


def add_parser(commands) -> None:
    p = commands.add_parser(
        "enrol", parents=[api_options()], help=_("import a course roster (CSV): enrol, change roles, --sync unenrols"),
        description=_("Import a roster into a course. The CSV's first line names the columns username, display name, "
                    "email, role (student, ta, instructor); UTF-8 or GBK, separated by , ; or tab. Every line is "
                    "checked before anything changes."))
    p.add_argument("course", help=_("the course id, e.g. intro-python"))
    p.add_argument("roster", help=_("the roster file (CSV)"))
    p.add_argument("--dry-run", action="store_true", help=_("print what would change; change nothing"))
    p.add_argument("--sync", action="store_true",
                   help=_("also unenrol everyone of the course who is not in the file (accounts and homes are kept)"))
    p.set_defaults(run=enrol)
