"""The `goldenhub` command line: one sub-command family per module, wired here. It speaks
the platform's language, else the terminal's (hub_ext.cli.language), chosen at start."""

import argparse
import sys

from hub_ext.cli import language
from hub_ext.i18n import _


def make_parser() -> argparse.ArgumentParser:
    # The sub-command modules are imported after the language is chosen: help texts are
    # translated when the parser is built.
    from hub_ext.cli import (accounts_cmd, admin_cmd, courses_cmd, enrol_cmd, images_cmd, k8s_cmd, ops_cmd,
                             platform_cmd, sessions_cmd, term_cmd, usage_cmd)

    parser = argparse.ArgumentParser(prog="goldenhub", description=_("Run and manage a goldenhub teaching platform."))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (platform_cmd, ops_cmd, courses_cmd, images_cmd, admin_cmd, enrol_cmd, term_cmd, accounts_cmd, usage_cmd, sessions_cmd, k8s_cmd):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    language.use_language()
    args = make_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
