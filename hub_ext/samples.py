"""The sample courses' moving parts on this host: courseware as real git repositories
served by `git daemon`, and the sample datasets under /srv/goldenhub/datasets.

Every function is idempotent: it creates what is missing and never overwrites what an
instructor may have changed (a pushed repo, a replaced dataset file).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from hub_ext import paths

GIT_PORT = 9418
DATASETS_DIR = Path("/srv/goldenhub/datasets")


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60)


def ensure_repo_from_dir(source: Path, bare: Path, message: str = "Sample courseware") -> bool:
    """Create bare repo `bare` holding the files of `source` on branch main; False if it existed."""
    if bare.exists():
        return False
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(source, work)
        _git("init", "--quiet", "--initial-branch=main", cwd=work)
        _git("add", "-A", cwd=work)
        _git("-c", "user.name=goldenhub", "-c", "user.email=goldenhub@localhost",
             "commit", "--quiet", "-m", message, cwd=work)
        _git("push", "--quiet", str(bare), "main", cwd=work)
    return True


def ensure_courseware_repos(git_root: Path | None = None) -> list[str]:
    git_root = git_root or paths.state_dir() / "git"
    made = []
    for source in sorted((paths.courses_dir() / "courseware").iterdir()):
        if source.is_dir() and ensure_repo_from_dir(source, git_root / f"{source.name}.git"):
            made.append(source.name)
    return made


# Files that earlier goldenhub versions installed as samples (sha256 of their content). Such a
# file, unchanged since, is ours to replace with the current sample; any other content is
# someone's data and stays. (The first iris sample was synthetic, with negative widths.)
SUPERSEDED_SAMPLES = {
    "iris/iris.csv": {"1a3a9eb538dc890d3b8a2ff597619083e3e9fd58c2f8bc1b17e6623d939e1ac1"},
}


def ensure_datasets(dest: Path = DATASETS_DIR) -> list[str]:
    """Install the sample datasets that are missing; bring files that an earlier version
    installed, unchanged since, up to the current sample. Returns what changed."""
    changed = []
    for source in sorted((paths.courses_dir() / "datasets").iterdir()):
        target = dest / source.name
        if not source.is_dir():
            continue
        if not target.exists():
            shutil.copytree(source, target)
            changed.append(source.name)
            continue
        for file in sorted(f for f in source.rglob("*") if f.is_file()):
            relative = file.relative_to(source.parent).as_posix()
            there = target / file.relative_to(source)
            if there.is_symlink() or (there.exists() and not there.is_file()):
                continue
            if not there.exists() or _sha256(there) in SUPERSEDED_SAMPLES.get(relative, ()):
                there.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, there)
                changed.append(relative)
    return changed


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_git_daemon(listen: list[str], base: Path | None = None, port: int = GIT_PORT) -> bool:
    """Serve `base` read-only over git:// on the given addresses; False if already served."""
    base = base or paths.state_dir() / "git"
    if all(port_open(addr, port) for addr in listen):
        return False
    base.mkdir(parents=True, exist_ok=True)
    cmd = ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}", f"--port={port}",
           f"--pid-file={base}/git-daemon.pid", "--detach"]
    cmd += [f"--listen={addr}" for addr in listen]
    subprocess.run([*cmd, str(base)], check=True, timeout=30)
    for _ in range(50):
        if all(port_open(addr, port) for addr in listen):
            return True
        subprocess.run(["sleep", "0.1"])
    raise RuntimeError(f"git daemon did not start listening on {', '.join(listen)}:{port}")
