"""`goldenhub up`: prepare the sample courses' git server and datasets, then run the hub."""

from __future__ import annotations

import argparse
import os
import sys

import docker

from hub_ext import paths, samples
from hub_ext.catalog.model import CatalogError, load_catalog
from hub_ext.credentials import ensure_secrets
from hub_ext.hubconfig import Settings
from spawner.network import ensure_network


def prepare(s: Settings) -> str:
    """Everything the hub needs before it starts; returns the student network's gateway."""
    client = docker.from_env()
    gateway = ensure_network(client, s.network)
    for name in samples.ensure_courseware_repos():
        print(f"created sample courseware repository {name}.git")
    for name in samples.ensure_datasets():
        print(f"installed sample dataset {samples.DATASETS_DIR / name}")
    if samples.ensure_git_daemon(["127.0.0.1", gateway]):
        print(f"git server for sample courseware listening on {gateway}:{samples.GIT_PORT}")
    try:
        catalog = load_catalog(s.courses_dir)
    except CatalogError as e:
        sys.exit(f"course catalog has errors:\n{e}")
    missing = []
    for t in catalog.templates.values():
        try:
            client.images.get(t.image)
        except docker.errors.ImageNotFound:
            missing.append(t.image)
    if missing:
        print(f"warning: images not built yet: {', '.join(missing)} (run `goldenhub images build`)")
    return gateway


def up(args: argparse.Namespace) -> int:
    s = Settings.from_env()
    prepare(s)
    secrets = ensure_secrets(s.state_dir)
    print(f"""
goldenhub is starting at {s.bind_url}
  students: any username, password {secrets['student_password']}
  admin:    user {', '.join(s.admin_users)}, password in {s.state_dir / 'secrets.yaml'}
""", flush=True)
    config = str(paths.REPO_ROOT / "jupyterhub_config.py")
    os.chdir(s.state_dir)
    jupyterhub = os.path.join(os.path.dirname(sys.executable), "jupyterhub")
    os.execv(jupyterhub, [jupyterhub, "-f", config])
    return 0


def prepare_only(args: argparse.Namespace) -> int:
    prepare(Settings.from_env())
    return 0


def add_parser(commands) -> None:
    p = commands.add_parser("up", help="start the platform (hub, proxy, sample courseware server)")
    p.set_defaults(run=up)
    p = commands.add_parser("prepare", help="create the network, sample repos, datasets and git server; do not start the hub")
    p.set_defaults(run=prepare_only)
