"""Publishing a course's golden image: what a cold build costs, and what the publishes an
instructor does every week (a requirements change, a courseware change) and a rollback cost.

Everything runs on its own: Debian's docker-registry on a free loopback port with a temporary
storage directory, a temporary state directory (so the service database and publish logs are
the benchmark's), and course `bench-publish`, a copy of intro-python's environment, template
and courseware (served from a temporary git repository by `git daemon`). The publishes are the
real `goldenhub images publish` and `goldenhub images rollback` commands, each in its own
process, as an admin runs them. Measured, each on the same registry:

  (a) cold: the build with no cache and the push into the empty registry. --cold-scope chain
      (default) rebuilds base → framework → course under a throwaway namespace; --cold-scope
      course rebuilds only the course layer cold, FROM the cached framework (quicker);
  (1) the first publish of the course (its framework's layers go to the registry too);
  (b) a requirements change: one small package added to environment/requirements.txt;
  (c) a courseware-only change: a notebook edited and pushed to the courseware repository;
  (d) a rollback to version 1: seconds from the command's start until the merged catalog (what
      the next student start reads) gives version 1's reference.

Seconds are wall time of the command; bytes pushed are the growth of the registry's storage.
Goals (issue 12): (c) under 10 % of (a), (d) under 5 s.

    python benchmarks/publish.py --cold-scope course --json out.json
    python benchmarks/publish.py --quick        # no cold build: (1), (b), (c), (d)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import docker
import yaml

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_ext.paths import REPO_ROOT  # noqa: E402
from tests.helpers import GitRemote, free_port, remove_docker_objects, wait_for  # noqa: E402

COURSE = "bench-publish"
SOURCE_COURSE = "intro-python"
ADDED_REQUIREMENT = "humanize"  # small, pure Python, not in the scipy framework
COMMAND_TIMEOUT = 3600  # seconds for one publish (a cold chain is the slowest)
ROLLBACK_WAIT = 60  # seconds the catalog may take to show the rollback before we call it failed
GOAL_COURSEWARE = 0.10  # (c)/(a)
GOAL_ROLLBACK_S = 5.0


@dataclass
class Row:
    case: str
    seconds: float
    pushed: int  # bytes the registry's storage grew by
    note: str = ""
    steps: dict = field(default_factory=dict)  # a publish's seconds per phase (PHASES)


class BenchError(Exception):
    """A step failed; str() says which and shows the end of its output."""


# --------------------------------------------------------------------------- parts


def storage_bytes(root: Path) -> int:
    """Bytes of every file under the registry's storage (blobs are stored once, by digest)."""
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                pass
    return total


class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in `root`."""

    def __init__(self, root: Path):
        self.root = root / "storage"
        self.root.mkdir(parents=True)
        self.address = f"127.0.0.1:{free_port()}"
        config = root / "registry.yml"
        config.write_text(yaml.safe_dump({
            "version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            "http": {"addr": self.address}}))
        binary = shutil.which("docker-registry")
        if not binary:
            raise BenchError("docker-registry is not installed (apt-get install docker-registry; .ci/setup does)")
        self.log = (root / "registry.log").open("wb")
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, 30, f"docker-registry answering on {self.address}", interval=0.2)

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise BenchError(f"docker-registry exited with {self.process.returncode}")
        try:
            return urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2).status == 200
        except OSError:
            return False

    def used(self) -> int:
        return storage_bytes(self.root)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=Instructor", "-c", "user.email=i@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def make_course(work: Path, remote: GitRemote) -> tuple[Path, Path]:
    """A courses directory (a git repository, as an admin keeps it) holding course bench-publish:
    intro-python's template and environment, its courseware in a repository of `remote`.
    Returns (courses dir, a working copy of the courseware)."""
    from hub_ext import samples

    source = yaml.safe_load((REPO_ROOT / "courses" / f"{SOURCE_COURSE}.yaml").read_text())
    template = dict(source["templates"][0])
    template.update(id=f"{COURSE}-cpu", image=f"goldenhub/course-{COURSE}:latest",
                    courseware={"repo": remote.url_from_container(COURSE), "branch": "main", "target": COURSE})
    if not all(Path(d["source"]).is_dir() for d in template.get("datasets", [])):
        template.pop("datasets", None)  # `goldenhub prepare` makes the sample datasets; without them, none
    course = {"id": COURSE, "title": "Publish benchmark", "framework": source["framework"], "access": "everyone",
              "templates": [template]}
    courses = work / "courses"
    shutil.copytree(REPO_ROOT / "courses" / SOURCE_COURSE / "environment", courses / COURSE / "environment")
    (courses / f"{COURSE}.yaml").write_text(yaml.safe_dump(course, sort_keys=False, allow_unicode=True))
    git("init", "-q", "--initial-branch=main", cwd=courses)
    git("add", "-A", cwd=courses)
    git("commit", "-qm", "Course bench-publish", cwd=courses)
    samples.ensure_repo_from_dir(REPO_ROOT / "courses" / "courseware" / SOURCE_COURSE,
                                 remote.root / f"{COURSE}.git")
    clone = work / "courseware"
    subprocess.run(["git", "clone", "-q", str(remote.root / f"{COURSE}.git"), str(clone)], check=True)
    return courses, clone


def edit_notebook(clone: Path) -> None:
    """An instructor's courseware-only change: one more markdown cell in the first notebook."""
    notebook = sorted(clone.glob("*.ipynb"))[0]
    data = json.loads(notebook.read_text())
    data["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["Added for this week."]})
    notebook.write_text(json.dumps(data, indent=1))
    git("commit", "-qam", "Edit a notebook", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)


def add_requirement(courses: Path) -> None:
    requirements = courses / COURSE / "environment" / "requirements.txt"
    requirements.write_text(requirements.read_text().rstrip("\n") + f"\n{ADDED_REQUIREMENT}\n")
    git("commit", "-qam", f"Add {ADDED_REQUIREMENT}", cwd=courses)


STEP_LINE = re.compile(r"Step (\d)/5: ")  # a publish's step header (Docker's build steps read "Step 1/21 :")
PHASES = ("start", "build", "smoke", "push", "pin", "prepull")


def goldenhub(env: dict, log: Path, *args: str) -> tuple[float, dict[str, float]]:
    """Run a `goldenhub` command as an admin does, its output appended to `log`; its seconds,
    and for a publish the seconds of each step (from its "Step k/5:" lines as they come)."""
    started = time.monotonic()
    marks = [("start", started)]
    with log.open("a") as out:
        out.write(f"\n$ goldenhub {' '.join(args)}\n")
        out.flush()
        process = subprocess.Popen([sys.executable, "-m", "hub_ext.cli", *args], cwd=REPO_ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        watchdog = threading.Timer(COMMAND_TIMEOUT, process.kill)
        watchdog.start()
        try:
            for line in process.stdout:
                out.write(line)
                found = STEP_LINE.match(line)
                if found and 1 <= int(found.group(1)) < len(PHASES):
                    marks.append((PHASES[int(found.group(1))], time.monotonic()))
            code = process.wait()
        finally:
            watchdog.cancel()
    ended = time.monotonic()
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise BenchError(f"goldenhub {' '.join(args)} exited with {code}:\n{tail}")
    steps = {name: (marks[i + 1][1] if i + 1 < len(marks) else ended) - at for i, (name, at) in enumerate(marks)}
    return ended - started, steps


class NoCache:
    """The Docker API with every build made without the layer cache (the cold case)."""

    def __init__(self, api: docker.APIClient):
        self._api = api

    def __getattr__(self, name):
        return getattr(self._api, name)

    def build(self, **kwargs):
        return self._api.build(nocache=True, **kwargs)


def cold_build(api: docker.APIClient, courses: Path, registry: Registry, namespace: str, scope: str,
               log: Path) -> Row:
    """(a): the course's chain (or only its course layer) built with no cache under `namespace`,
    each layer pushed to the registry, through goldenhub's own build functions."""
    import jupyterhub

    from hub_ext import paths
    from hub_ext.catalog.model import load_catalog
    from hub_ext.images import build, course_env
    from hub_ext.images import plan as images
    from hub_ext.images import offline_base

    course = load_catalog(courses).courses[COURSE]
    env = course_env.local_env(courses / COURSE / "environment")
    options = build.BuildOptions(
        images_dir=paths.images_dir(), work_dir=log.parent / "rootfs", push=registry.address,
        jupyterhub_version=jupyterhub.__version__, namespace=namespace, courses_dir=courses,
        # as `goldenhub images build` does: the CA bundle pip trusts here (TLS-intercepting proxies)
        ca_bundle=Path(os.environ["PIP_CERT"]) if os.environ.get("PIP_CERT") else None,
        # the OS image the cached chain was built FROM when that is the offline base: no pull
        offline_base=offline_base.image_exists(api, "goldenhub/os-base:bookworm"))
    before = registry.used()
    started = time.monotonic()
    with log.open("a") as out:
        def say(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        os_base = build.choose_os_base(api, options, log=say)
        plan = images.plan_chain([course], options.images_dir, cuda_base=os_base.cuda, namespace=namespace,
                                 courses_dir=courses, require_env=False)
        if scope == "chain":
            build.build_chain(NoCache(api), plan, options, os_base, log=say, out=out, envs={COURSE: env})
            note = "base → framework → course, no cache"
        else:
            layer = plan.layers[-1]
            framework = f"{images.IMAGE_NAMESPACE}/{layer.parent.rsplit('/', 1)[-1]}:latest"
            build.build_course_layer(NoCache(api), layer, env, f"{images.IMAGE_NAMESPACE}/base:latest", framework,
                                     replace(options), log=say, out=out)
            note = f"course layer only, no cache, FROM {framework}"
    return Row("(a) cold build + push", time.monotonic() - started, registry.used() - before, note)


def publish(env: dict, registry: Registry, log: Path, case: str, note: str) -> Row:
    before = registry.used()
    seconds, steps = goldenhub(env, log, "images", "publish", COURSE)
    return Row(case, seconds, registry.used() - before, note, steps)


def rollback(env: dict, courses: Path, log: Path, number: int) -> Row:
    """(d): from the rollback command's start until the merged catalog names version `number`."""
    from hub_ext.catalog.store import load_full_catalog
    from hub_ext.hubconfig import Settings
    from hub_ext.images import versions
    from hub_ext.service.db import open_database

    db_url = Settings.default_db_url(Path(env["GOLDENHUB_STATE_DIR"]))
    with open_database(db_url)() as session:
        wanted = versions.version(session, COURSE, number).reference

    def image_now() -> str:
        return load_full_catalog(courses, db_url).courses[COURSE].templates[0].image

    if image_now() == wanted:
        raise BenchError(f"version {number} is the image the course uses now; rolling back to it proves nothing")
    started = time.monotonic()
    goldenhub(env, log, "images", "rollback", COURSE, str(number))
    wait_for(lambda: image_now() == wanted, ROLLBACK_WAIT, f"the catalog giving version {number}", interval=0.05)
    seconds = time.monotonic() - started
    read_started = time.monotonic()
    image_now()
    return Row(f"(d) rollback to version {number}", seconds, 0,
               f"of which reading the catalog {time.monotonic() - read_started:.2f} s")


def clean_images(api: docker.APIClient, names: tuple[str, ...]) -> None:
    """Remove every image with a reference containing one of `names`, newest first (children
    before their parents), by each reference (never forced)."""
    rows = sorted(api.images(), key=lambda r: r.get("Created", 0), reverse=True)
    for row in rows:
        references = [r for r in (row.get("RepoTags") or []) + (row.get("RepoDigests") or [])
                      if not r.startswith("<none>")]
        if not references or not all(any(n in r for n in names) for r in references):
            continue
        for reference in references:
            try:
                api.remove_image(reference)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                print(f"warning: could not remove {reference}: {e.explanation}", file=sys.stderr)


def machine() -> str:
    memory = next((int(line.split()[1]) // 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    info = docker.from_env().info()
    return (f"{os.cpu_count()} cores, {memory} GB, {platform.machine()}; Docker {info.get('ServerVersion')} "
            f"({info.get('Driver')})")


def human(n: int) -> str:
    from hub_ext.i18n.format import size_text

    return size_text(n)


def table(rows: list[Row]) -> str:
    lines = ["| case | seconds | pushed | note |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.case} | {r.seconds:.1f} | {human(r.pushed)} | {r.note} |" for r in rows]
    return "\n".join(lines)


def step_table(rows: list[Row]) -> str:
    """Where each publish's seconds went: start (the command up to its first step), then the steps."""
    lines = ["| publish | " + " | ".join(PHASES) + " |", "| --- |" + " --- |" * len(PHASES)]
    lines += [f"| {r.case} | " + " | ".join(f"{r.steps.get(p, 0):.1f}" for p in PHASES) + " |"
              for r in rows if r.steps]
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    by = {r.case[:3]: r for r in rows}
    out = []
    cold = by.get("(a)")
    for key, what in (("(b)", "requirements change"), ("(c)", "courseware-only change")):
        if cold and key in by and cold.seconds and cold.pushed:
            r = by[key]
            out.append(f"{key}/(a) {what}: time {r.seconds / cold.seconds:.1%}, bytes pushed "
                       f"{r.pushed / cold.pushed:.1%}")
    if cold and "(c)" in by:
        c = by["(c)"]
        met = c.seconds / cold.seconds < GOAL_COURSEWARE
        out.append(f"goal: courseware-only publish < {GOAL_COURSEWARE:.0%} of a cold build: "
                   f"{'met' if met else 'NOT met'} ({c.seconds / cold.seconds:.1%} of the time)")
    if "(d)" in by:
        d = by["(d)"]
        out.append(f"goal: rollback effective for the next start < {GOAL_ROLLBACK_S:.0f} s: "
                   f"{'met' if d.seconds < GOAL_ROLLBACK_S else 'NOT met'} ({d.seconds:.2f} s)")
    return out


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace, work: Path) -> list[Row]:
    from hub_ext.hubconfig import Settings, ensure_network

    api = docker.APIClient(timeout=1800, **docker.utils.kwargs_from_env())
    gateway = ensure_network(Settings.from_env())
    log = work / "commands.log"
    registry = Registry(work / "registry")
    remote = GitRemote(work / "git", gateway, free_port())
    remote.start()
    namespace = f"{args.prefix}-{uuid.uuid4().hex[:6]}"
    rows: list[Row] = []
    try:
        courses, clone = make_course(work, remote)
        env = dict(os.environ, GOLDENHUB_STATE_DIR=str(work / "state"), GOLDENHUB_COURSES_DIR=str(courses),
                   GOLDENHUB_REGISTRY=registry.address, GOLDENHUB_PREFIX=args.prefix, GOLDENHUB_LANGUAGE="en")
        for name in ("GOLDENHUB_DB_URL", "GOLDENHUB_DB_URL_FILE"):
            env.pop(name, None)
        (work / "state").mkdir()
        print(f"registry {registry.address}, courseware git://{gateway}:{remote.port}/{COURSE}.git, "
              f"log {log}", flush=True)
        if not args.quick:
            print(f"(a) cold build, scope {args.cold_scope} ...", flush=True)
            rows.append(cold_build(api, courses, registry, namespace, args.cold_scope, log))
            # Docker's builder takes the newest image with the same parent and step as the cache:
            # the cold layers must go before the publishes, or those would build on them (and
            # move the shared goldenhub/base and framework tags to new images).
            clean_images(api, (f"{namespace}/", registry.address))
        print("(1) first publish ...", flush=True)
        first = ("course layer from the cache; base and framework layers pushed too" if args.quick else
                 "course layer from the cache; the framework's layers already in the registry" if
                 args.cold_scope == "course" else "course layer from the cache; all layers pushed (the cold "
                                                  "chain's layers differ)")
        rows.append(publish(env, registry, log, "(1) first publish", first))
        add_requirement(courses)
        print("(b) requirements change ...", flush=True)
        rows.append(publish(env, registry, log, "(b) requirements change", f"+ {ADDED_REQUIREMENT}"))
        edit_notebook(clone)
        print("(c) courseware-only change ...", flush=True)
        rows.append(publish(env, registry, log, "(c) courseware-only change", "a notebook edited"))
        # Version 1 is a different image from version 3 (the requirements changed in between).
        print("(d) rollback from version 3 to 1 ...", flush=True)
        rows.append(rollback(env, courses, log, 1))
    finally:
        remote.stop()
        registry.stop()
        remove_docker_objects(args.prefix)
        clean_images(api, (f"{namespace}/", f"/course-{COURSE}", f"goldenhub/course-{COURSE}:", registry.address))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-scope", choices=("chain", "course"), default="chain",
                        help="what (a) rebuilds with no cache: base → framework → course (default), or only the "
                             "course layer")
    parser.add_argument("--quick", action="store_true", help="no cold build: (1), (b), (c) and (d) only")
    parser.add_argument("--prefix", default="ghbench-pub", help="name prefix of containers and images it makes")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary directory (logs, state)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="goldenhub-bench-publish-"))
    kept_log = Path(tempfile.gettempdir()) / "goldenhub-bench-publish.log"
    try:
        rows = run(args, work)
    except (BenchError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        print(f"the commands' output: {kept_log}", file=sys.stderr)
        return 1
    finally:
        if (work / "commands.log").exists():
            shutil.copy(work / "commands.log", kept_log)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\npublish benchmark, course {COURSE} (intro-python's environment and courseware); {machine()}")
    print(table(rows))
    print("\nseconds per step of each publish:")
    print(step_table(rows))
    print()
    for line in ratios(rows):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "cold_scope": None if args.quick else args.cold_scope,
                                         "rows": [asdict(r) for r in rows], "ratios": ratios(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
