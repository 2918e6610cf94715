"""`goldenhub k8s values [-o FILE]`: a values file for the Zero to JupyterHub chart from the
platform's settings (hub_ext/k8s/values.py). Every option is checked whole before anything is
written; a refused one gets a sentence and exit status 2, and no file."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from hub_ext.i18n import _

IMAGE_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*){0,8}")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
SIZE_RE = re.compile(r"[1-9][0-9]{0,5}(?:Mi|Gi|Ti)")
NAME_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
CLASS_RE = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")


def _problems(args: argparse.Namespace) -> list[str]:
    checks = [
        ("--hub-image", args.hub_image, IMAGE_RE, _("an image name such as registry.example.edu/goldenhub-hub")),
        ("--hub-tag", args.hub_tag, TAG_RE, _("an image tag such as 0.1.0")),
        ("--namespace", args.namespace, NAME_RE, _("a Kubernetes namespace such as goldenhub")),
        ("--home-size", args.home_size, SIZE_RE, _("a size such as 10Gi or 500Mi")),
    ]
    if args.storage_class:
        checks.append(("--storage-class", args.storage_class, CLASS_RE, _("a StorageClass name such as nfs-client")))
    return [_("%(option)s: got %(value)r; allowed: %(allowed)s", option=o, value=v[:80], allowed=a)
            for o, v, rx, a in checks if not (len(v) <= 255 and rx.fullmatch(v))]


def run_values(args: argparse.Namespace) -> int:
    from hub_ext.hubconfig import Settings
    from hub_ext.k8s.values import CHART_VERSION, make_values

    problems = _problems(args)
    if problems:
        for p in problems:
            print("goldenhub k8s values: " + _("error: %(problem)s", problem=p), file=sys.stderr)
        return 2
    values = make_values(Settings.from_env(), args.hub_image, args.hub_tag, args.namespace, args.storage_class,
                         args.home_size)
    header = (f"# Zero to JupyterHub chart {CHART_VERSION} values, written by `goldenhub k8s values`.\n"
              f"# The hub image {args.hub_image}:{args.hub_tag} is yours to build: JupyterHub with goldenhub[k8s]\n"
              "# installed and the course files in /srv/goldenhub/courses (README, Kubernetes).\n")
    text = header + yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(_("Wrote the chart's values to %(file)s.", file=args.output))
    else:
        sys.stdout.write(text)
    return 0


def add_parser(commands) -> None:
    k8s = commands.add_parser("k8s", help=_("Kubernetes: the Zero to JupyterHub chart's values"))
    sub = k8s.add_subparsers(dest="k8s_command", required=True, metavar="ACTION")
    values = sub.add_parser("values", help=_("write a values file for the Zero to JupyterHub chart"))
    values.add_argument("-o", "--output", metavar="FILE", help=_("write to FILE instead of standard output"))
    values.add_argument("--hub-image", default="goldenhub/hub",
                        help=_("the hub image you build, with goldenhub installed (default: goldenhub/hub)"))
    values.add_argument("--hub-tag", default="latest", help=_("its tag (default: latest)"))
    values.add_argument("--namespace", default="goldenhub", help=_("the namespace of the release (default: goldenhub)"))
    values.add_argument("--storage-class", default="",
                        help=_("the StorageClass of students' homes (default: the cluster's default)"))
    values.add_argument("--home-size", default="10Gi", help=_("the size of each home (default: 10Gi)"))
    values.set_defaults(run=run_values)
