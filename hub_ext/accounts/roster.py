"""Roster files: parse and validate a course roster (CSV), and plan what applying it changes.

Pure: bytes and plain data in, plain data out; no hub, no database (hub_ext.accounts.enrolment
applies a plan). Rules:

- The file is a CSV whose first non-empty line names the columns: username (also "user name",
  "user_name"), display name (also "display_name", "displayname", "name"), email (also
  "e-mail", "email address") and role, in any order, case and spacing ignored. Only username
  is required; a missing role column or an empty role cell means student. Any other named
  column is refused (a typo such as "emial" would otherwise silently drop every address);
  a column with no name is ignored while all its cells are empty (spreadsheets add those).
- Encodings that spreadsheet programs write: UTF-8 with or without BOM, UTF-16 with BOM
  ("Unicode text"), else GB18030 (a superset of GBK, for Chinese display names). The
  separator is `,`, `;` or tab: the one that makes the header line name known columns.
  CRLF, LF and quoted fields with line breaks work.
- Bounded: at most MAX_BYTES bytes and MAX_ROWS people; bigger is refused with the limit.
- Validated whole: every problem of every line is reported ("line N: ..."), and a roster
  with any problem is never applied. Usernames full-match USERNAME (lower case, because
  JupyterHub lower-cases names at login: a name with capitals is an error that says so);
  roles are student, ta, instructor (any case); emails full-match EMAIL; a username twice
  in the file is reported on both lines; a name that differs from an existing hub user only
  by case is refused (make_plan), because it would be a second account for the same person.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from hub_ext import contract
from hub_ext.i18n import N_, _, current, ngettext
from hub_ext.i18n.format import size_text

MAX_BYTES = 2 * 2**20
MAX_ROWS = 5000
MAX_NAME = 255   # display name characters (the enrolments table's column)
MAX_EMAIL = 254  # RFC 5321's path limit
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
USERNAME_RULE = N_("1 to 64 characters: lower-case letters a-z, digits and . _ @ -, starting with a letter "
                 "or digit")
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
                   r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
SEPARATORS = {",": N_("comma"), ";": N_("semicolon"), "\t": N_("tab")}  # English in the API; _() on pages
COLUMNS = {  # normalised header -> field
    "username": "username", "user name": "username",
    "display name": "display_name", "displayname": "display_name", "name": "display_name",
    "email": "email", "e-mail": "email", "email address": "email", "e-mail address": "email",
    "role": "role",
}
# A header naming a field's column twice, one sentence per field.
SECOND_COLUMN = {
    "username": N_("column %(cell)s is a second username column; keep one"),
    "display_name": N_("column %(cell)s is a second display name column; keep one"),
    "email": N_("column %(cell)s is a second email column; keep one"),
    "role": N_("column %(cell)s is a second role column; keep one"),
}
ALLOWED_COLUMNS = N_("username, display name (or name), email, role")
# Characters a display name may not hold: control characters and line breaks (they would
# reach terminals and pages as such) and the bidirectional overrides that make a name
# display as another one.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class RosterError(ValueError):
    """A roster that may not be applied; `problems` holds one sentence per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Person:
    line: int
    username: str
    role: str
    display_name: str = ""
    email: str = ""


@dataclass(frozen=True)
class Roster:
    people: tuple[Person, ...]
    encoding: str
    separator: str
    columns: tuple[str, ...]


# --- parsing -----------------------------------------------------------------------------------

def decode(data: bytes) -> tuple[str, str]:
    """The text of the file and the name of its encoding; RosterError if it is none we read."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="strict"), "UTF-8 with BOM"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass
    elif b"\0" not in data:
        try:
            return data.decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            try:
                return data.decode("gb18030"), "GB18030"
            except UnicodeDecodeError:
                pass
    raise RosterError([_("The file is not text in UTF-8, UTF-16 or GB18030/GBK: save it from the spreadsheet "
                         "as \"CSV UTF-8\" (or CSV in the Chinese GBK encoding) and upload that")])


def _normalise_header(cell: str) -> str:
    return re.sub(r"[\s_]+", " ", cell.strip().lower())


def _header(text: str) -> tuple[str, list[str]]:
    """The separator and the header cells: the separator under which the first non-empty line
    names the most known columns (a comma when none does)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    best, best_score, best_cells = ",", -1, []
    for sep in SEPARATORS:
        cells = next(csv.reader([first], delimiter=sep), [])
        score = sum(_normalise_header(c) in COLUMNS for c in cells)
        if score > best_score:
            best, best_score, best_cells = sep, score, cells
    return best, best_cells


def _check_name(value: str) -> str | None:
    if len(value) > MAX_NAME:
        return _("display name is %(num)d characters; at most %(most)d", num=len(value), most=MAX_NAME)
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI for ch in value):
        return _("display name contains control or text-direction characters; remove them")
    return None


def check_username(value: str) -> str | None:
    """Why this is not a roster username, or None if it is one."""
    if not value:
        return _("username is empty; a username is %(rule)s", rule=_(USERNAME_RULE))
    if USERNAME.fullmatch(value):
        return None
    shown = value if len(value) <= 70 else value[:67] + "..."
    if USERNAME.fullmatch(value.lower()):
        return _("username %(name)s has capital letters; JupyterHub lower-cases names at login, so write it as "
                 "%(lower)s", name=repr(shown), lower=repr(value.lower()))
    return _("username %(name)s is not allowed; a username is %(rule)s", name=repr(shown), rule=_(USERNAME_RULE))


def parse_roster(data: bytes) -> Roster:
    """The people of a roster file, validated; RosterError with every problem otherwise."""
    if len(data) > MAX_BYTES:
        raise RosterError([_("The file is larger than %(limit)s, the most a roster may be (%(rows)d people): split "
                             "it into several files", limit=size_text(MAX_BYTES), rows=MAX_ROWS)])
    text, encoding = decode(data)
    if not text.strip():
        raise RosterError([_("The file is empty: its first line names the columns (%(columns)s), then one line "
                             "per person", columns=_(ALLOWED_COLUMNS))])
    sep, header = _header(text)
    header_line = next(i for i, line in enumerate(text.splitlines(), 1) if line.strip())
    problems: list[tuple[int, str]] = []  # (line, sentence): shown in line order
    fields: dict[int, str] = {}
    unnamed: list[int] = []
    for i, cell in enumerate(header):
        name = _normalise_header(cell)
        if not name:
            unnamed.append(i)
        elif name not in COLUMNS:
            problems.append(at(header_line, _("unknown column %(cell)s; the columns are %(columns)s (rename it, or "
                                              "delete the column)", cell=repr(cell.strip()[:40]),
                                              columns=_(ALLOWED_COLUMNS))))
        elif COLUMNS[name] in fields.values():
            problems.append(at(header_line, _(SECOND_COLUMN[COLUMNS[name]], cell=repr(cell.strip()[:40]))))
        else:
            fields[i] = COLUMNS[name]
    if "username" not in fields.values():
        problems.insert(0, at(header_line, _("no username column; the first line names the columns (%(columns)s), "
                                             "separated by commas, semicolons or tabs", columns=_(ALLOWED_COLUMNS))))
    if problems:
        raise RosterError([text for _line, text in problems])

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    people: list[Person] = []
    lines_of: dict[str, list[int]] = {}
    header_seen = False
    last_line = 0
    try:
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines (and lines of bare separators) are skipped
            if not header_seen:
                header_seen = True
                continue
            if len(people) >= MAX_ROWS:
                raise RosterError([_("The file has more than %(rows)d people; a roster may have at most %(rows)d: "
                                     "split it into several files", rows=MAX_ROWS)])
            values: dict[str, str] = {}
            for i, cell in enumerate(cells):
                if i in fields:
                    values[fields[i]] = cell.strip()
                elif cell.strip() and (i in unnamed or i >= len(header)):
                    problems.append(at(line, _("a value in column %(column)d, which has no name in line %(header)d; "
                                               "name the column or remove the value", column=i + 1,
                                               header=header_line)))
                    break
            row_problems = []
            username = values.get("username", "")
            bad_name = check_username(username)
            if bad_name:
                row_problems.append(bad_name)
            role = values.get("role", "").lower() or contract.ROLE_STUDENT
            if role not in contract.ROLES:
                row_problems.append(_("role %(role)s is not one of %(roles)s", role=repr(values['role'][:40]),
                                      roles=listing(contract.ROLES)))
            email = values.get("email", "")
            if email and (len(email) > MAX_EMAIL or not EMAIL.fullmatch(email)):
                row_problems.append(_("email %(email)s is not an email address (name@example.org)",
                                      email=repr(email[:80])))
            name = values.get("display_name", "")
            why = _check_name(name)
            if why:
                row_problems.append(why)
            problems += [at(line, p) for p in row_problems]
            if not bad_name:
                lines_of.setdefault(username, []).append(line)
            people.append(Person(line, username, role, name, email))
    except csv.Error as e:
        problems.append(at(reader.line_num, _("not valid CSV (%(error)s); check the quotes on this line", error=e)))
    if not people and not problems:
        problems.append((0, _("The file names its columns but lists nobody: add one line per person")))
    for username, lines in lines_of.items():
        if len(lines) > 1:
            for line in lines:
                others = ", ".join(str(x) for x in lines if x != line)
                problems.append(at(line, _("username %(name)s is also on line %(others)s; list each person once",
                                           name=username, others=others)))
    if problems:
        raise RosterError([text for _line, text in sorted(problems, key=lambda p: p[0])])
    return Roster(tuple(people), encoding, SEPARATORS[sep], tuple(fields[i] for i in sorted(fields)))


def listing(items) -> str:
    """'a, b' in English, 'a、b' in Chinese."""
    return ("、" if current() == "zh_CN" else ", ").join(items)


def at(line: int, problem: str) -> tuple[int, str]:
    """A problem of one line of the file: (the line, the sentence naming it)."""
    return line, _("line %(line)d: %(problem)s", line=line, problem=problem)


# --- planning ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recorded:
    """What the service's enrolment row says of someone (hub_ext.service.db.Enrolment)."""

    role: str
    display_name: str = ""
    email: str = ""


@dataclass
class Plan:
    """What applying a roster to a course changes, one list per kind of change."""

    course: str
    enrol: list[Person] = field(default_factory=list)            # not in the course yet
    role_changes: list[tuple[Person, str]] = field(default_factory=list)  # (person, role before)
    detail_changes: list[Person] = field(default_factory=list)   # name/email differ, or no row yet
    unchanged: list[Person] = field(default_factory=list)
    unenrol: list[tuple[str, str]] = field(default_factory=list)  # (username, role) absent with sync
    kept: list[str] = field(default_factory=list)                # absent, but sync keeps them (the actor)
    accounts_to_create: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.enrol) + len(self.role_changes) + len(self.detail_changes) + len(self.unenrol)


def current_role(username: str, students: set[str], staff: set[str], rows: dict[str, Recorded]) -> str:
    """The role someone holds now: their row's when it agrees with their group; else what
    their group says (staff without a row: instructor)."""
    row = rows.get(username)
    in_staff, in_students = username in staff, username in students
    if row and ((row.role in contract.STAFF_ROLES and in_staff and not in_students)
                or (row.role == contract.ROLE_STUDENT and in_students and not in_staff)):
        return row.role
    if in_staff and in_students:
        return "both groups"
    if in_staff:
        return row.role if row and row.role in contract.STAFF_ROLES else contract.ROLE_INSTRUCTOR
    if in_students:
        return contract.ROLE_STUDENT
    return row.role if row else ""


def make_plan(course: str, roster: Roster, existing_users: set[str], students: set[str], staff: set[str],
              rows: dict[str, Recorded], sync: bool = False, actor: str = "") -> Plan:
    """What applying `roster` to `course` would change, given the hub's users, the members of
    the course's student and staff groups and the recorded rows. RosterError (every line) for a
    name that differs from an existing hub user only by case. With `sync`, everyone enrolled
    (either group, or a row) who is not in the file is unenrolled, except `actor` (whoever
    applies it never locks themselves out; the plan lists them as kept)."""
    by_lower: dict[str, str] = {}
    for name in existing_users:
        by_lower.setdefault(name.lower(), name)
    clashes = [at(p.line, _("username %(name)s differs only by case from the existing hub user %(user)s; use that "
                            "exact name, or rename one of them", name=p.username, user=repr(by_lower[p.username])))[1]
               for p in roster.people if p.username not in existing_users and p.username in by_lower]
    if clashes:
        raise RosterError(clashes)
    plan = Plan(course)
    enrolled = students | staff
    for p in roster.people:
        if p.username not in existing_users:
            plan.accounts_to_create.append(p.username)
        row = rows.get(p.username)
        wanted_group = contract.group_for_role(course, p.role)
        in_groups = {g for g, members in ((contract.course_group(course), students),
                                          (contract.staff_group(course), staff)) if p.username in members}
        if not in_groups:
            plan.enrol.append(p)
        elif in_groups != {wanted_group} or (row is not None and row.role != p.role):
            plan.role_changes.append((p, current_role(p.username, students, staff, rows)))
        elif row is None or (p.display_name and row.display_name != p.display_name) or (
                p.email and row.email != p.email):
            plan.detail_changes.append(p)
        else:
            plan.unchanged.append(p)
    if sync:
        listed = {p.username for p in roster.people}
        for name in sorted((enrolled | set(rows)) - listed):
            if name == actor:
                plan.kept.append(name)
            else:
                plan.unenrol.append((name, current_role(name, students, staff, rows)))
    return plan


def plan_summary(plan: Plan, applied: bool, sync: bool = False) -> str:
    """One sentence: what changed (or would), for the API, the command line and the page."""
    counts = dict(course=plan.course, enrol=len(plan.enrol), unenrol=len(plan.unenrol), unchanged=len(plan.unchanged))
    if plan.changes == 0:
        n = len(plan.unchanged)
        if sync:
            return ngettext("Nothing to change in %(course)s: the %(num)d person of the file is enrolled as it says, "
                            "and nobody else is.", "Nothing to change in %(course)s: all %(num)d people of the file "
                            "are enrolled as it says, and nobody else is.", n, course=plan.course)
        return ngettext("Nothing to change in %(course)s: the %(num)d person of the file is enrolled as it says.",
                        "Nothing to change in %(course)s: all %(num)d people of the file are enrolled as it says.",
                        n, course=plan.course)
    roles, details, accounts = len(plan.role_changes), len(plan.detail_changes), len(plan.accounts_to_create)
    if applied:
        return _("Applied to %(course)s: enrolled %(enrol)d, changed %(roles)s and %(details)s, unenrolled "
                 "%(unenrol)d, created %(accounts)s; %(unchanged)d unchanged.", **counts,
                 roles=ngettext("%(num)d role", "%(num)d roles", roles),
                 details=ngettext("%(num)d detail", "%(num)d details", details),
                 accounts=ngettext("%(num)d account", "%(num)d accounts", accounts))
    return _("Dry run for %(course)s: %(enrol)d to enrol, %(roles)s, %(details)s, %(unenrol)d to unenrol, "
             "%(accounts)s; %(unchanged)d unchanged. Nothing was changed.", **counts,
             roles=ngettext("%(num)d role change", "%(num)d role changes", roles),
             details=ngettext("%(num)d detail change", "%(num)d detail changes", details),
             accounts=ngettext("%(num)d new account", "%(num)d new accounts", accounts))


def plan_dict(plan: Plan, roster: Roster, dry_run: bool, sync: bool, applied: bool) -> dict:
    """The one result shape of a roster import (API, command line and page)."""
    def person(p: Person) -> dict:
        return {"username": p.username, "role": p.role, "display_name": p.display_name, "email": p.email,
                "line": p.line}

    return {
        "course": plan.course, "dry_run": dry_run, "sync": sync, "applied": applied,
        "file": {"encoding": roster.encoding, "separator": roster.separator, "columns": list(roster.columns),
                 "people": len(roster.people)},
        "enrol": [person(p) for p in plan.enrol],
        "role_changes": [{**person(p), "from": before} for p, before in plan.role_changes],
        "detail_changes": [person(p) for p in plan.detail_changes],
        "unenrol": [{"username": name, "role": role} for name, role in plan.unenrol],
        "kept": plan.kept,
        "accounts_to_create": plan.accounts_to_create,
        "unchanged": len(plan.unchanged),
        "summary": plan_summary(plan, applied, sync),
    }
