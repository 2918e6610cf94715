"""`goldenhub courses ...`: check course definitions before the hub loads them (validate), and
whether the images on this host hold the frameworks the courses ask for (status)."""

import argparse
import sys
from pathlib import Path

from hub_ext import paths
from hub_ext.catalog import rules
from hub_ext.catalog.model import CatalogError, load_catalog
from hub_ext.cli.language import pad, text_width
from hub_ext.i18n import N_, _, ngettext


def validate(args: argparse.Namespace) -> int:
    directory = Path(args.directory) if args.directory else paths.courses_dir()
    try:
        catalog = load_catalog(directory)
        # Dataset sources by what they point at now (the hub checks again at every start).
        problems = [f"{t.source}: {t.id}.datasets.{d.name}.source: {e}"
                    for t in catalog.templates.values() for d in t.datasets
                    for e in _dataset_problem(d.source)]
        if problems:
            raise CatalogError(problems)
    except CatalogError as e:
        print(ngettext("%(num)d problem in %(directory)s:", "%(num)d problems in %(directory)s:", len(e.problems),
                       directory=directory), file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    templates = catalog.templates
    print(_("OK: %(courses)s, %(templates)s in %(directory)s",
            courses=ngettext("%(num)d course", "%(num)d courses", len(catalog.courses)),
            templates=ngettext("%(num)d template", "%(num)d templates", len(templates)), directory=directory))
    for t in templates.values():
        print(f"  {t.course}/{t.id}: {t.image}, " + ngettext("%(num)d GPU", "%(num)d GPUs", t.gpus))
    return 0


STATUS_TIMEOUT_S = 60
STATUS_EPILOG = N_("""exit status: 0 when every image is ok (or cannot be checked: not built by goldenhub);
1 when an image is missing or built without its course's framework; 2 when the catalog has
errors or the Docker engine does not answer.""")


def status(args: argparse.Namespace) -> int:
    """A table of every template's image: framework asked, framework built, what it means."""
    from sqlalchemy.exc import SQLAlchemyError

    from hub_ext.catalog.store import load_full_catalog
    from hub_ext.hubconfig import Settings
    from hub_ext.images import build as images_build
    from hub_ext.images import plan as images
    from hub_ext.images import status as image_status

    directory = Path(args.directory) if args.directory else paths.courses_dir()
    try:
        db_url = Settings.from_env().db_url
    except ValueError as e:  # a database URL file that cannot be read: the course files alone
        print(_("Templates made on the admin page are left out: %(problem)s", problem=e), file=sys.stderr)
        db_url = None
    try:
        try:
            catalog = load_full_catalog(directory, db_url)
        except SQLAlchemyError as e:
            print(_("Templates made on the admin page are left out: the database cannot be read (%(error)s)",
                    error=type(e).__name__), file=sys.stderr)
            catalog = load_full_catalog(directory, None)
        api = images_build.make_client(STATUS_TIMEOUT_S)
        rows = image_status.check_courses(catalog.courses.values(), lambda ref: image_status.read_labels(api, ref))
    except CatalogError as e:
        print(ngettext("%(num)d problem in %(directory)s; run goldenhub courses validate:",
                       "%(num)d problems in %(directory)s; run goldenhub courses validate:", len(e.problems),
                       directory=directory), file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except images.ImagesError as e:
        print(f"goldenhub courses status: {e}", file=sys.stderr)
        return 2
    table = [(_("COURSE"), _("TEMPLATE"), _("IMAGE"), _("ASKED"), _("BUILT"), _("STATUS"))] + [
        (r.course, r.template, r.image, r.asked or "-", r.built or "-", r.sentence) for r in rows]
    widths = [max(text_width(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(pad(cell, w) for cell, w in zip(row, widths)) + "  " + row[5])
    degraded = [r for r in rows if r.degraded]
    if degraded:
        count = len({r.course for r in degraded})
        print(ngettext("%(num)d course cannot give students what the course file asks for: %(courses)s",
                       "%(num)d courses cannot give students what the course file asks for: %(courses)s", count,
                       courses=", ".join(dict.fromkeys(r.course for r in degraded))), file=sys.stderr)
        return 1
    print(ngettext("The image of %(num)d template is as its course asks, or not built by goldenhub.",
                   "Every image of %(num)d templates is as its course asks, or not built by goldenhub.", len(rows)))
    return 0


def _dataset_problem(source: str) -> list[str]:
    try:
        rules.resolve_dataset(source, (), (str(paths.state_dir()),))
        return []
    except rules.RuleError as e:
        return [str(e)]


def add_parser(commands) -> None:
    courses = commands.add_parser("courses", help=_("course definitions (courses/*.yaml)"))
    sub = courses.add_subparsers(dest="courses_command", required=True, metavar="ACTION")
    check = sub.add_parser("validate", help=_("check course YAML files; exits non-zero on any problem"))
    check.add_argument("directory", nargs="?", help=_("directory of course YAML files (default: courses/)"))
    check.set_defaults(run=validate)
    show = sub.add_parser(
        "status", help=_("whether each course's image holds its framework; exits 1 if one is missing or substituted"),
        description=_("For every template: its image on this host, the framework its course asks for and the one "
                      "the image was built on (from the image's goldenhub labels), and what that means."),
        epilog=_(STATUS_EPILOG), formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("directory", nargs="?", help=_("directory of course YAML files (default: courses/)"))
    show.set_defaults(run=status)
