"""One publish of a course's golden image: build → smoke → push → pin → prepull.

Rules:
- A publish holds its course's lock from begin_run (or the service's run, adopted) to
  finish_run; a second publish of the course is refused with a sentence naming the first.
- Every line goes to the caller's stream AND to the run's log file
  (<state>/publish/<run id>.log, directory 0700), which outlives the run.
- Each step is recorded (set_step) before it starts, so a failed run names the step it failed at.
- A failure before the pin changes nothing students use: the run is finished as failed with
  its sentence, and nothing is recorded or pinned. The version, its pin and the audit row are
  written in ONE transaction. A pre-pull failure does not undo the pin: students on that host
  pull the image when they start, with progress.
- Any exception we see, expected or not (including an interrupt), finishes the run as failed
  and is written to the log: no run is left "running" by a crash this process saw.
- The environment comes from the courseware repo at --ref, else courses/<id>/environment/,
  else the courseware repo at its branch; the smoke test runs the courseware checkout of
  that ref (or of the branch head).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from hub_ext import paths
from hub_ext.courseware.mirror import refresh_mirror
from hub_ext.i18n import N_, _
from hub_ext.i18n.deferred import deferred
from hub_ext.images import push as pushing
from hub_ext.images import swarm_prepull
from hub_ext.images import versions
from spawner.gpus import free_published_gpus

STEP_TITLES = {  # the header of each step: "Step k/5: <title>"
    "build": N_("build the course image"),
    "smoke": N_("smoke-test it in a throw-away student container"),
    "push": N_("push it to the registry"),
    "pin": N_("pin the course's templates to it"),
    "prepull": N_("pre-pull it on the Docker hosts"),
}
AUDIT_PUBLISH, AUDIT_ROLLBACK = "publish", "rollback"


class StepFailed(Exception):
    """An expected failure of a step; str() is the sentence the run ends with."""


class PublishFailed(Exception):
    """The publish failed and its run is finished as failed: str() is its sentence."""

    def __init__(self, message: str, run_id: int, step: str):
        self.run_id, self.step = run_id, step
        super().__init__(message)


@dataclass(frozen=True)
class Published:
    run_id: int
    number: int
    reference: str
    templates: tuple[str, ...]


def log_path_of(state_dir: Path, run_id: int) -> Path:
    """Where the run's whole log is kept."""
    return state_dir / "publish" / f"{run_id}.log"


class RunLog:
    """Writes everything to the stream and to the run's log file, flushed as it comes (so the
    page that follows the file sees it live). Callable with a line; file-like for build output."""

    def __init__(self, path: Path, stream: TextIO):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        self.path, self.stream = path, stream
        self.file = path.open("a", encoding="utf-8")
        path.chmod(0o600)

    def write(self, text: str) -> int:
        for target in (self.stream, self.file):
            target.write(text)
            target.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def __call__(self, line: str) -> None:
        self.write(line.rstrip("\n") + "\n")

    def close(self) -> None:
        self.file.close()


def publish(settings, course_id: str, ref: str = "", run_id: int | None = None, actor: str = "",
            out: TextIO = sys.stdout, hosts: Callable[[], list] = pushing.docker_hosts) -> Published:
    """Publish course `course_id` (or do the service's run `run_id`); raises PublishBusy when
    another publish holds the course, PublishFailed when a step failed (run finished as failed)."""
    from hub_ext.service.db import open_database

    factory = open_database(settings.db_url)
    if run_id is None:
        run = versions.begin_run(factory, course_id, ref, actor)
    else:
        run = versions.adopt_run(factory, run_id)
        if run.course != course_id:
            message = f"publish {run_id} is of course {run.course}, not {course_id}"
            versions.finish_run(factory, run.id, ok=False, message=message)
            raise PublishFailed(message, run.id, "")
        ref, actor = run.ref, run.actor
    log = RunLog(log_path_of(settings.state_dir, run.id), out)
    hosts = swarm_prepull.hosts_for(settings, hosts)  # backend swarm: every node, through the manager
    pipeline = _Pipeline(settings, factory, run.id, course_id, ref, actor, log, hosts)
    try:
        at = " @ " + ref if ref else ""
        log(_("Publish %(id)d of %(course)s%(ref)s by %(actor)s", id=run.id, course=course_id, ref=at, actor=actor))
        result = pipeline.run()
    except StepFailed as exc:
        log(_("Publish %(id)d failed at step %(step)s: %(problem)s", id=run.id, step=pipeline.step, problem=exc))
        log(_("Nothing students use has changed."))
        versions.finish_run(factory, run.id, ok=False, message=str(exc))
        raise PublishFailed(str(exc), run.id, pipeline.step) from None
    except BaseException as exc:  # a crash we see, or an interrupt: never leave the run "running"
        log("".join(traceback.format_exception(exc)).rstrip())
        message = _("publish %(id)d stopped unexpectedly at step %(step)s (%(error)s); the log is %(log)s",
                    id=run.id, step=pipeline.step or "build", error=type(exc).__name__, log=log.path)
        versions.finish_run(factory, run.id, ok=False, message=message)
        if isinstance(exc, Exception):
            raise PublishFailed(message, run.id, pipeline.step) from exc
        raise
    finally:
        pipeline.clean_up()
        log.close()
    return result


class _Pipeline:
    """The five steps of one run, in order; the state between steps lives here."""

    def __init__(self, settings, factory, run_id: int, course_id: str, ref: str, actor: str, log: RunLog, hosts):
        self.settings, self.factory, self.run_id = settings, factory, run_id
        self.course_id, self.ref, self.actor, self.log, self.hosts = course_id, ref, actor, log, hosts
        self.step = ""
        self.work = Path(tempfile.mkdtemp(prefix=f"goldenhub-publish-{run_id}-"))

    def clean_up(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def begin(self, step: str) -> None:
        self.step = step
        versions.set_step(self.factory, self.run_id, step, log_path=str(self.log.path))
        number = versions.STEPS.index(step) + 1
        self.log("\n" + _("Step %(k)d/%(n)d: %(what)s", k=number, n=len(versions.STEPS), what=_(STEP_TITLES[step])))

    def run(self) -> Published:
        self.begin("build")
        course, templates = self.course()
        built, env, checkout = self.build(course)
        self.begin("smoke")
        self.smoke(templates, built.references[0] if built.references else built.image_id, checkout)
        self.begin("push")
        number = self.next_number()
        local = built.references[0] if built.references else built.image_id
        repository = pushing.push_repository_for(self.settings.registry, built.layer.repository)
        try:
            pushed = pushing.push_version(self.api, built.image_id, repository, pushing.make_version_tag(number),
                                          local, log=self.log)
        except pushing.PushError as exc:
            raise StepFailed(str(exc)) from None
        self.begin("pin")
        version_id, number = self.pin(built.image_id, pushed, env)
        self.begin("prepull")
        try:  # the pin stands whatever happens here
            failed = [r.host for r in pushing.prepull(self.hosts(), pushed.reference, log=self.log) if not r.ok]
        except Exception as exc:
            self.log("".join(traceback.format_exception(exc)).rstrip())
            failed = [_("the Docker hosts")]
        if failed:
            self.log(_("The pin stands: students on %(hosts)s pull the image when they start, with progress.",
                       hosts=", ".join(failed)))
        ids = tuple(t.id for t in templates)
        versions.finish_run(self.factory, self.run_id, ok=True, version_id=version_id)
        self.log(_("Published %(course)s version %(number)d (%(reference)s); templates %(templates)s use it now",
                   course=self.course_id, number=number, reference=pushed.reference, templates=", ".join(ids)))
        return Published(self.run_id, number, pushed.reference, ids)

    # --- step 1 ----------------------------------------------------------------------------

    def course(self):
        from hub_ext.catalog import store

        catalog = store.load_full_catalog(self.settings.courses_dir, self.settings.db_url)
        course = catalog.courses.get(self.course_id)
        if course is None:
            raise StepFailed(_("there is no course %(course)s in %(directory)s", course=self.course_id,
                               directory=self.settings.courses_dir))
        templates = [t for t in course.templates if versions.is_course_image(t.image, self.course_id)]
        if not templates:
            raise StepFailed(_("no template of %(course)s uses its own image (course-%(course)s): a published "
                               "version would change nothing", course=self.course_id))
        return course, templates

    def courseware(self, course):
        return next((t.courseware for t in course.templates if t.courseware is not None), None)

    def build(self, course):
        from hub_ext.hubconfig import ensure_network
        from hub_ext.images import build as images_build
        from hub_ext.images import course_env
        from hub_ext.images import plan as images

        import jupyterhub

        self.gateway = self.settings.gateway or ensure_network(self.settings)
        courseware = self.courseware(course)
        env_dir = self.settings.courses_dir / self.course_id / "environment"
        checkout = None
        try:
            self.api = images_build.make_client(1800)
            if self.ref and courseware is None:
                raise StepFailed(_("--ref needs a courseware repository, and no template of %(course)s names one",
                                   course=self.course_id))
            if courseware is not None:
                at = self.ref or courseware.branch
                self.log(_("Checking out %(repo)s at %(ref)s", repo=courseware.repo, ref=at))
                checkout, commit = course_env.checkout_courseware(courseware.repo, at, self.work / "courseware",
                                                                  self.gateway)
                self.log(_("Commit %(commit)s", commit=commit))
                refresh_mirror(courseware.repo, self.settings.state_dir, self.gateway)  # students' next starts
            if not self.ref and env_dir.is_dir():
                self.log(_("Environment: %(directory)s", directory=env_dir))
                env = course_env.local_env(env_dir)
            elif checkout is not None:
                self.log(_("Environment: the courseware at %(ref)s", ref=self.ref or courseware.branch))
                env = course_env.env_from_checkout(checkout, courseware.repo, commit, self.ref or courseware.branch)
            else:
                raise StepFailed(_("%(course)s declares no environment: add %(directory)s/requirements.txt, or a "
                                   "courseware repository with one", course=self.course_id, directory=env_dir))
            # As `goldenhub images build` builds (its defaults), so base and framework come from the cache.
            ca_bundle = Path(os.environ["PIP_CERT"]) if os.environ.get("PIP_CERT") else None
            options = images_build.BuildOptions(images_dir=paths.images_dir(),
                                                work_dir=self.settings.state_dir / "rootfs",
                                                jupyterhub_version=jupyterhub.__version__, ca_bundle=ca_bundle,
                                                courses_dir=self.settings.courses_dir)
            built = images_build.build_course(self.api, course, env, options, log=self.log, out=self.log)
        except (course_env.EnvError, images.ImagesError) as exc:
            raise StepFailed(str(exc)) from None
        self.log(_("Built %(image)s (%(id)s)", image=" ".join(built.references), id=built.image_id[:19]))
        return built, env, checkout

    # --- step 2 ----------------------------------------------------------------------------

    def smoke(self, templates, image: str, checkout: Path | None) -> None:
        import docker

        from hub_ext.images import smoke

        client = docker.APIClient(timeout=600, **docker.utils.kwargs_from_env())
        for template in templates:
            gpus = free_published_gpus(client, self.settings.state_dir) if template.gpus else ()
            self.log(_("Smoke test of template %(template)s", template=template.id))
            try:
                smoke.run_smoke(client, template, image, prefix=self.settings.name_prefix,
                                network=self.settings.network, gateway=self.gateway, run_id=self.run_id,
                                courseware=checkout, gpu_ids=tuple(gpus), log=self.log)
            except smoke.SmokeFailed as exc:
                if getattr(exc, "detail", ""):
                    self.log(exc.detail)
                raise StepFailed(_("the smoke test of template %(template)s failed: %(problem)s",
                                   template=template.id, problem=exc)) from None

    # --- steps 3 and 4 ---------------------------------------------------------------------

    def next_number(self) -> int:
        with self.factory() as session:
            existing = versions.versions(session, self.course_id)
        return (existing[0].number if existing else 0) + 1

    def pin(self, image_id: str, pushed: pushing.Pushed, env) -> tuple[int, int]:
        from hub_ext.images import course_env
        from hub_ext.service.db import AuditEntry

        labels = (self.api.inspect_image(image_id).get("Config") or {}).get("Labels") or {}
        with self.factory() as session:
            version = versions.record_version(
                session, self.course_id, reference=pushed.reference, image_id=image_id, actor=self.actor,
                tag=pushed.tag, commit=env.commit, ref=self.ref, requirements_digest=course_env.requirements_digest(env),
                labels=labels, publish_id=self.run_id)
            versions.pin(session, self.course_id, version, "publish", self.actor)
            session.add(AuditEntry(actor=self.actor, action=AUDIT_PUBLISH, target_user="", course=self.course_id,
                                   result="ok", detail=deferred(N_("published version %(number)s (%(reference)s)"),
                                                                number=version.number, reference=pushed.reference)))
            session.commit()
            self.log(_("Pinned %(course)s to version %(number)d", course=self.course_id, number=version.number))
            return version.id, version.number


def rollback(settings, course_id: str, number: str, actor: str) -> tuple:
    """Pin an earlier version again (audited); returns (version, servers on another image)."""
    from hub_ext.service.db import AuditEntry, open_database

    factory = open_database(settings.db_url)
    with factory() as session:
        versions.rollback(session, course_id, number, actor)
        target = versions.version(session, course_id, number)
        session.add(AuditEntry(actor=actor, action=AUDIT_ROLLBACK, target_user="", course=course_id, result="ok",
                               detail=deferred(N_("rolled back to version %(number)s (%(reference)s)"),
                                               number=target.number, reference=target.reference)))
        session.commit()
    return target, servers_on_other_images(settings.name_prefix, course_id, target.image_id)


def servers_on_other_images(prefix: str, course_id: str, image_id: str) -> list[str] | None:
    """Names of the course's running student containers whose image is not `image_id`
    (None when the Docker engine does not answer)."""
    import docker
    import requests.exceptions

    from hub_ext import contract

    try:
        found = docker.from_env(timeout=30).api.containers(
            filters={"label": [f"{contract.LABEL_COURSE}={course_id}", contract.LABEL_USER], "status": "running"})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None
    return sorted(c["Names"][0].lstrip("/") for c in found
                  if c["Names"] and c["Names"][0].lstrip("/").startswith(prefix + "-") and c["ImageID"] != image_id)
