"""`goldenhub images publish | rollback | versions`: publish a course's golden image (build,
smoke test, push, pin, pre-pull), pin an earlier version again, list the versions and pins.

Rules: publishing needs a registry (Settings.registry); the command line acts as
"cli:<unix user>", except for a run the service began (--run), which keeps its actor.
Every expected failure is one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import getpass
import re
import signal
import sys

from hub_ext.i18n import _, ngettext

REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")  # a branch, tag or commit; no '..'
COURSE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")  # as the catalog's course ids


def ref_value(text: str) -> str:
    if not REF_RE.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(_("REF must be a branch, tag or commit: letters, digits, . _ / - (at most "
                                           "200, no '..'), e.g. main or v2; got %(value)s", value=repr(text[:40])))
    return text


def course_value(text: str) -> str:
    if not COURSE_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(_("COURSE must be a course id (lowercase letters, digits and -), e.g. "
                                           "intro-python; got %(value)s", value=repr(text[:40])))
    return text


def run_value(text: str) -> int:
    if not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise argparse.ArgumentTypeError(_("ID must be a publish number, e.g. 12; got %(value)s", value=repr(text[:20])))
    return int(text)


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def _fail(command: str, message: str) -> int:
    print(f"goldenhub images {command}: " + _("error: %(problem)s", problem=message), file=sys.stderr)
    return 1


def _settings():
    from hub_ext.hubconfig import Settings

    return Settings.from_env()


def registry_missing(state_dir) -> str:
    return _("publishing is off: no registry is configured. Set one in %(file)s (registry: 127.0.0.1:5000) or in "
             "the environment (GOLDENHUB_REGISTRY=127.0.0.1:5000): host[:port][/path] of the registry the "
             "students' Docker hosts pull from", file=state_dir / "goldenhub.yaml")


def _database_problem(settings, exc: Exception) -> str:
    from sqlalchemy.engine import make_url

    shown = make_url(settings.db_url).render_as_string(hide_password=True)
    problem = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
    return _("the goldenhub database %(url)s cannot be used: %(problem)s (check GOLDENHUB_STATE_DIR and "
             "GOLDENHUB_DB_URL; `goldenhub db upgrade` migrates an old one)", url=shown, problem=problem)


def _guarded(command: str, action) -> int:
    """Run `action(settings)`; settings and database problems are one sentence, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from hub_ext.service.db import SchemaError

    try:
        settings = _settings()
    except ValueError as exc:
        return _fail(command, str(exc))
    try:
        return action(settings)
    except (SQLAlchemyError, SchemaError) as exc:
        return _fail(command, _database_problem(settings, exc))


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through publish(), which marks the run failed


def run_publish(args: argparse.Namespace) -> int:
    return _guarded("publish", lambda settings: _publish(args, settings))


def _publish(args: argparse.Namespace, settings) -> int:
    from hub_ext.images import plan as images
    from hub_ext.images import publish, versions

    if not settings.registry:
        return _refuse_run(settings, args.run_id, registry_missing(settings.state_dir))
    try:
        images.make_push_repository(settings.registry, "goldenhub/course-x")
    except images.ImagesError:
        return _refuse_run(settings, args.run_id, _("the registry %(value)s (GOLDENHUB_REGISTRY or registry: in %(file)s) is not a "
                                  "registry address: give host[:port][/path] without http://, e.g. 127.0.0.1:5000",
                                  value=repr(settings.registry[:100]), file=settings.state_dir / "goldenhub.yaml"))
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = publish.publish(settings, args.course, ref=args.ref or "", run_id=args.run_id, actor=cli_actor())
    except (versions.PublishBusy, versions.VersionError, publish.PublishFailed) as exc:
        return _fail("publish", str(exc))
    return 0 if result else 1


def _refuse_run(settings, run_id: int | None, message: str) -> int:
    """A publish refused before it began: a run the service began for it ends failed with the
    same sentence, so its page says why and the course is not left locked."""
    from hub_ext.images import versions
    from hub_ext.service.db import PublishRun, open_database

    if run_id is not None:
        factory = open_database(settings.db_url)
        with factory() as session:
            run = session.get(PublishRun, run_id)
            running = run is not None and run.state == versions.RUNNING
        if running:
            versions.finish_run(factory, run_id, ok=False, message=message)
    return _fail("publish", message)


def run_rollback(args: argparse.Namespace) -> int:
    return _guarded("rollback", lambda settings: _rollback(args, settings))


def _rollback(args: argparse.Namespace, settings) -> int:
    from hub_ext.images import publish, versions

    try:
        target, others = publish.rollback(settings, args.course, args.version, cli_actor())
    except versions.VersionError as exc:
        return _fail("rollback", str(exc))
    print(_("%(course)s uses version %(number)d again: %(reference)s", course=args.course, number=target.number,
            reference=target.reference))
    if others is None:
        print(_("The running servers could not be counted: the Docker engine does not answer. Servers keep their "
                "image until they restart."))
    elif others:
        print(ngettext("%(num)d running server runs another version and keeps it until it restarts: %(names)s",
                       "%(num)d running servers run another version and keep it until they restart: %(names)s",
                       len(others), names=", ".join(others)))
    else:
        print(_("No running server of %(course)s runs another version.", course=args.course))
    return 0


def run_versions(args: argparse.Namespace) -> int:
    return _guarded("versions", lambda settings: _versions(args, settings))


def _versions(args: argparse.Namespace, settings) -> int:
    from hub_ext.i18n.format import when_text
    from hub_ext.images import versions
    from hub_ext.service.db import as_utc, open_database

    with open_database(settings.db_url)() as session:
        found = versions.versions(session, args.course)
        pinned = versions.current_pins(session, [args.course]).get(args.course)
        history = versions.pin_history(session, args.course)
    if not found:
        print(_("%(course)s has no published version yet: goldenhub images publish %(course)s", course=args.course))
        return 0
    by_id = {v.id: v.number for v in found}
    heads = [_("version"), _("tag"), _("commit"), _("ref"), _("published by"), _("when")]
    rows = [[("* " if pinned and v.id == pinned.id else "  ") + str(v.number), v.tag.rsplit(":", 1)[-1],
             v.commit[:12], v.ref or "-", v.published_by, when_text(as_utc(v.at))] for v in found]
    _table(heads, rows)
    print("\n" + _("Pin history (newest first):"))
    _table([_("revision"), _("version"), _("action"), _("by"), _("when")],
           [[str(r.number), str(by_id.get(r.version_id, "?")), r.action, r.author, when_text(as_utc(r.at))]
            for r in history])
    print("\n" + _("* the version the course's templates use now"))
    return 0


def _table(heads: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    for row in [heads, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def add_parser(commands) -> None:
    """Add publish, rollback and versions to `goldenhub images`."""
    p = commands.add_parser(
        "publish", help=_("build, smoke-test, push and pin a course's image, then pre-pull it"),
        description=_("Publish a course's golden image: build its environment (courseware repo at --ref, else "
                      "courses/<id>/environment/), run its notebooks in a throw-away student container, push it to "
                      "the registry, pin the course's templates to it by digest, and pre-pull it. A failed step "
                      "changes nothing students use."))
    p.add_argument("course", type=course_value, metavar="COURSE", help=_("the course id"))
    p.add_argument("--ref", type=ref_value, metavar="REF",
                   help=_("build the environment and smoke-test the courseware of this git branch, tag or commit "
                          "of the courseware repository"))
    p.add_argument("--run", type=run_value, metavar="ID", dest="run_id",
                   help=_("do publish ID that the goldenhub service began (its page starts it this way)"))
    p.set_defaults(run=run_publish)
    p = commands.add_parser("rollback", help=_("pin an earlier published version again"),
                            description=_("Pin an earlier published version of a course again. Running servers keep "
                                          "their image until they restart."))
    p.add_argument("course", type=course_value, metavar="COURSE", help=_("the course id"))
    p.add_argument("version", metavar="VERSION", help=_("the version number, e.g. 2 (see goldenhub images versions)"))
    p.set_defaults(run=run_rollback)
    p = commands.add_parser("versions", help=_("a course's published versions and pin history"),
                            description=_("List a course's published versions (* marks the pinned one) and the "
                                          "history of its pin."))
    p.add_argument("course", type=course_value, metavar="COURSE", help=_("the course id"))
    p.set_defaults(run=run_versions)
