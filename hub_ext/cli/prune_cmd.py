"""`goldenhub images prune`: remove old local images of course versions that nothing needs.

The rules are hub_ext.images.prune's; this module reads the settings, the merged catalog and
the service database, then prints every course image with what happened to it. It refuses to
prune at all when it cannot know what is needed (course files with errors, a database it
cannot read): removing a pinned image by mistake would break a class.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from hub_ext import paths
from hub_ext.i18n import _, ngettext

DEFAULT_DAYS = 30
DOCKER_TIMEOUT_S = 300  # a removal of a large image may take a while; nothing waits longer
MAX_KEEP = 1000


def _bounded(low: int, high: int, what: str):
    def parse(text: str) -> int:
        if not text.isdigit() or len(text) > 6 or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(_("%(what)s must be a whole number from %(low)d to %(high)d, not "
                                               "%(value)s", what=what, low=low, high=high, value=repr(text[:40])))
        return int(text)
    return parse


def add_parser(commands) -> None:
    from hub_ext.images.prune import MAX_DAYS

    prune = commands.add_parser(
        "prune", help=_("remove old local images of course versions nothing needs"),
        description=_(
            "Remove local images of course repositories (…/course-<id>) older than DAYS that are not pinned "
            "by a course, not referred to by any template, not used by any container (running or stopped) "
            "and not one of the last K published versions of their course (the versions a rollback may "
            "need). Every course image is printed with what happened to it, and why a kept one is kept."))
    prune.add_argument("--older-than", metavar="DAYS", type=_bounded(0, MAX_DAYS, "--older-than"),
                       default=DEFAULT_DAYS,
                       help=_("only images created more than DAYS days ago (default: %(days)d)", days=DEFAULT_DAYS))
    prune.add_argument("--keep", metavar="K", type=_bounded(1, MAX_KEEP, "--keep"),
                       help=_("keep each course's last K published versions (default: publish_keep of the "
                              "settings, 5 unless set)"))
    prune.add_argument("--namespace", metavar="NAME",
                       help=_("only NAME/course-<id> repositories, e.g. goldenhub (default: every namespace)"))
    prune.add_argument("--dry-run", action="store_true", help=_("print what would be removed; remove nothing"))
    prune.set_defaults(run=run_prune)


def _fail(message: str, status: int = 2) -> int:
    print("goldenhub images prune: " + _("error: %(problem)s", problem=message), file=sys.stderr)
    return status


def run_prune(args: argparse.Namespace) -> int:
    """Exit status 0 when every image to remove was removed; 1 when Docker refused one; 2 when
    nothing was pruned because what is needed could not be known."""
    from sqlalchemy.exc import SQLAlchemyError

    from hub_ext.catalog.model import CatalogError
    from hub_ext.catalog.store import load_full_catalog
    from hub_ext.hubconfig import Settings
    from hub_ext.images import build as images_build
    from hub_ext.images import plan as images
    from hub_ext.images import prune

    courses_dir = paths.courses_dir()
    try:
        if args.namespace is not None:
            images.make_repository("course", "x", args.namespace)  # ImagesError naming what is allowed
        settings = Settings.from_env()
        keep = args.keep or settings.publish_keep
        catalog = load_full_catalog(courses_dir, settings.db_url)
        pins, published = prune.read_published(settings.db_url)
        api = images_build.make_client(DOCKER_TIMEOUT_S)
        decisions = prune.decide(prune.read_images(api), containers=prune.read_containers(api), pins=pins,
                                 published=published, template_images=prune.template_images(catalog), keep=keep,
                                 older_than_days=args.older_than, now=datetime.now(timezone.utc),
                                 namespace=args.namespace)
    except CatalogError as e:
        return _fail(_("the course files in %(directory)s have problems, so which images templates need is "
                       "unknown; nothing was removed. Run goldenhub courses validate.", directory=courses_dir)
                     + f"\n{e}")
    except SQLAlchemyError as e:
        return _fail(_("the service database cannot be read (%(error)s), so pins and published versions are "
                       "unknown; nothing was removed", error=type(e).__name__))
    except (ValueError, images.ImagesError) as e:
        return _fail(str(e))

    print(_("Course images older than %(days)s, keeping the last %(keep)s of each course%(dry)s:",
            days=ngettext("%(num)d day", "%(num)d days", args.older_than),
            keep=ngettext("%(num)d published version", "%(num)d published versions", keep),
            dry=_(" (dry run: nothing is removed)") if args.dry_run else ""))
    outcome = prune.prune(api, decisions, args.dry_run, log=lambda line: print("  " + line, flush=True))
    if args.dry_run:
        print(ngettext("%(num)d image would be removed, %(kept)d kept.",
                       "%(num)d images would be removed, %(kept)d kept.", len(outcome.removed),
                       kept=len(outcome.kept)))
    else:
        print(ngettext("%(num)d image removed, %(kept)d kept.",
                       "%(num)d images removed, %(kept)d kept.", len(outcome.removed), kept=len(outcome.kept)))
    if outcome.refused:
        print(ngettext("%(num)d image could not be removed; see above.",
                       "%(num)d images could not be removed; see above.", len(outcome.refused)), file=sys.stderr)
        return 1
    return 0
