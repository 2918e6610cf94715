"""`goldenhub images build`: build the golden images base → framework → course, optionally push.
A course layer is generated from courses/<id>/environment/ (requirements.txt, apt.txt, postBuild)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hub_ext import paths
from hub_ext.i18n import _
from hub_ext.images import plan as images
from hub_ext.images.offline_base import OfflineBaseError

DEFAULT_TIMEOUT_S = 1800


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("images", help=_("build and publish golden images"),
                                   description=_("Build and publish the golden images courses run in."))
    commands = parser.add_subparsers(dest="images_command", required=True, metavar="COMMAND")
    build = commands.add_parser(
        "build", help=_("build base → framework → course images with Docker's layer cache"),
        description=_(
            "Build goldenhub/base, goldenhub/framework-<name> and goldenhub/course-<id> for the selected "
            "courses (default: every course with a framework). Each image is tagged with its version "
            "(from git) and latest, and labelled with its provenance."
        ),
    )
    build.add_argument("--course", action="append", metavar="ID", dest="courses",
                       help=_("build only this course's chain; repeat for several (default: all courses)"))
    build.add_argument("--base-image", metavar="REF",
                       help=_("the OS image the base layer builds FROM (default: BASE_IMAGE in images/base/Dockerfile, "
                            "a CUDA runtime image; if it is neither present nor pullable, the offline Debian base)"))
    build.add_argument("--offline-base", action="store_true",
                       help=_("build FROM goldenhub/os-base:bookworm, made with debootstrap + docker import if missing "
                            "(no CUDA: requires-cuda frameworks are replaced by scipy)"))
    build.add_argument("--push", metavar="REGISTRY",
                       help=_("also tag REGISTRY/goldenhub/<name>:<version> and push it, e.g. 127.0.0.1:5000"))
    build.add_argument("--apt-mirror", metavar="URL", help=_("replace the OS apt archive URIs in the base layer"))
    build.add_argument("--pip-index-url", metavar="URL", help=_("the pip index of the images (base layer and above)"))
    build.add_argument("--ca-bundle", metavar="FILE", type=Path,
                       help=_("a PEM CA bundle the images trust, for TLS-intercepting proxies "
                            "(default: the file named by $PIP_CERT, if set)"))
    build.add_argument("--images-dir", metavar="DIR", type=Path, help=_("the layer Dockerfiles (default: images/)"))
    build.add_argument("--courses-dir", metavar="DIR", type=Path, help=_("the course YAML files and each course's environment/ directory "
                              "(default: courses/)"))
    build.add_argument("--namespace", default=images.IMAGE_NAMESPACE, metavar="NAME",
                       help=_("the image namespace: NAME/base, NAME/framework-<name>, NAME/course-<id> "
                              "(default: %(namespace)s; course templates refer to it)",
                              namespace=images.IMAGE_NAMESPACE))
    build.add_argument("--timeout", metavar="SECONDS", type=int, default=DEFAULT_TIMEOUT_S,
                       help=_("give up when the Docker engine sends nothing for this long (default: %(seconds)d)",
                              seconds=DEFAULT_TIMEOUT_S))
    build.set_defaults(run=run_build)
    __import__("hub_ext.cli.prune_cmd", fromlist=["add_parser"]).add_parser(commands)
    __import__("hub_ext.cli.publish_cmd", fromlist=["add_parser"]).add_parser(commands)


def _fail(message: str) -> int:
    print("goldenhub images build: " + _("error: %(problem)s", problem=message), file=sys.stderr)
    return 1


def run_build(args: argparse.Namespace) -> int:
    """Plan, then build; every expected failure is one clear message and exit status 1."""
    from hub_ext.catalog.model import CatalogError, load_catalog
    from hub_ext.images import build as images_build
    from hub_ext.images import course_env

    import jupyterhub

    images_dir = (args.images_dir or paths.images_dir()).resolve()
    courses_dir = (args.courses_dir or paths.courses_dir()).resolve()
    ca_bundle = args.ca_bundle or (Path(os.environ["PIP_CERT"]) if os.environ.get("PIP_CERT") else None)
    if ca_bundle is not None and not ca_bundle.is_file():
        return _fail(_("--ca-bundle %(file)s: no such file (give a PEM file, or unset PIP_CERT)", file=ca_bundle))
    try:
        if args.push:
            images.make_push_repository(args.push, "goldenhub/base")
        catalog = load_catalog(courses_dir)
        courses = images.select_courses(catalog.courses, args.courses)
        options = images_build.BuildOptions(
            images_dir=images_dir, work_dir=paths.state_dir() / "rootfs", base_image=args.base_image,
            offline_base=args.offline_base, apt_mirror=args.apt_mirror, pip_index_url=args.pip_index_url,
            ca_bundle=ca_bundle, push=args.push, jupyterhub_version=jupyterhub.__version__,
            namespace=args.namespace, courses_dir=courses_dir,
        )
        # Plan against a CUDA base first only to fail on a bad catalog/images dir or refused
        # environment files before Docker work.
        preplan = images.plan_chain(courses, images_dir, cuda_base=True, namespace=args.namespace,
                                    courses_dir=courses_dir)
        envs = {layer.name: course_env.local_env(layer.directory) for layer in preplan.layers if layer.kind == "course"}
        api = images_build.make_client(args.timeout)
        os_base = images_build.choose_os_base(api, options)
        print(_("OS base: %(image)s — %(reason)s", image=os_base.reference, reason=os_base.reason))
        plan = images.plan_chain(courses, images_dir, cuda_base=os_base.cuda, namespace=args.namespace,
                                 courses_dir=courses_dir)
        for note in plan.notes:
            print(note)
        print(_("Layers:"))
        print("\n".join(images.describe_plan(plan, os_base.reference)))
        built = images_build.build_chain(api, plan, options, os_base, envs=envs)
    except CatalogError as exc:
        return _fail(_("the course catalog in %(directory)s has problems:", directory=courses_dir) + f"\n{exc}")
    except (images.ImagesError, OfflineBaseError) as exc:
        return _fail(str(exc))
    print("\n" + _("Built:"))
    for item in built:
        pushed = "  " + _("pushed %(images)s", images=", ".join(item.pushed)) if item.pushed else ""
        print(f"  {' '.join(item.references):<60} {item.image_id.split(':')[-1][:12]}  {item.seconds:6.1f} s"
              f"  {item.size_note}{pushed}")
    return 0
