"""`goldenhub courses ...`: check course definitions before the hub loads them."""

import argparse
import sys
from pathlib import Path

from hub_ext import paths
from hub_ext.catalog import rules
from hub_ext.catalog.model import CatalogError, load_catalog


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
        print(f"{len(e.problems)} problem(s) in {directory}:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    templates = catalog.templates
    print(f"OK: {len(catalog.courses)} course(s), {len(templates)} template(s) in {directory}")
    for t in templates.values():
        print(f"  {t.course}/{t.id}: {t.image}, {t.gpus} GPU(s)")
    return 0


def _dataset_problem(source: str) -> list[str]:
    try:
        rules.resolve_dataset(source, (), (str(paths.state_dir()),))
        return []
    except rules.RuleError as e:
        return [str(e)]


def add_parser(commands) -> None:
    courses = commands.add_parser("courses", help="course definitions (courses/*.yaml)")
    sub = courses.add_subparsers(dest="courses_command", required=True, metavar="ACTION")
    check = sub.add_parser("validate", help="check course YAML files; exits non-zero on any problem")
    check.add_argument("directory", nargs="?", help="directory of course YAML files (default: courses/)")
    check.set_defaults(run=validate)
