"""The `goldenhub` command line: one sub-command family per module, wired here."""

import argparse
import sys

from hub_ext.cli import accounts_cmd, admin_cmd, courses_cmd, enrol_cmd, images_cmd, ops_cmd, platform_cmd, term_cmd


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="goldenhub", description="Run and manage a goldenhub teaching platform.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (platform_cmd, ops_cmd, courses_cmd, images_cmd, admin_cmd, enrol_cmd, term_cmd, accounts_cmd):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
