"""GoldenSpawner: the async lifecycle of a student's container (start, stop, poll, state,
progress). What goes into the container is decided by spawner/container.py; which template
a student may start by spawner/picker.py; GPUs by spawner/gpus.py (the hub-wide allocator:
spawner/gpu_state.py); how many start at once by spawner/admission.py."""

from __future__ import annotations

import asyncio
import os
import re
import time

import docker.errors
from dockerspawner import DockerSpawner
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, Dict, Float, Int, List, Unicode, default

from hub_ext import contract, paths
from hub_ext.branding import container as branding_container
from hub_ext.catalog import nfs, rules
from hub_ext.catalog.model import Template
from hub_ext.courseware.mirror import MirrorSettings, mirror_for_start
from hub_ext.homes.markers import reset_by_owner, reset_in_progress
from hub_ext.images import status as image_status
from hub_ext.homes.stop_notes import take_note
from hub_ext.i18n.deferred import told
from hub_ext.i18n import _, ngettext
from hub_ext.usage import lab_warnings
from spawner import container, start_events
from spawner.admission import Admission, QueueTimeout
from spawner.exits import explain_exit, explain_no_gpu, explain_reset, local, reset_reason, start_refusal
from spawner.form import options_from_form
from spawner.gpu_state import HubGPUs
from spawner.gpus import NoFreeGPU
from spawner.images import ImageUnavailable, pull_with_progress
from spawner.picker import TemplatePicker
from spawner.progress import ProgressLog


class StartFailed(Exception):
    """A start failed for a reason the student can be told in one sentence; `reason` is its
    code for the start events (spawner.start_events.REASONS)."""

    def __init__(self, sentence: str, reason: str = "other"):
        super().__init__(sentence)
        self.reason = reason


class GoldenSpawner(TemplatePicker, HubGPUs, DockerSpawner):
    """Starts the course environment a student picked, from the course catalog."""

    courses_dir = Unicode(
        config=True,
        help="Directory of course YAML files (default: courses/ of the goldenhub checkout). "
        "Read at every spawn, so edits apply to the next start without a hub restart.",
    )

    @default("courses_dir")
    def _default_courses_dir(self):
        return str(paths.courses_dir())

    catalog_db_url = Unicode(
        "", config=True,
        help="SQLAlchemy URL of the goldenhub service's database, whose runtime-created templates join "
        "the course files' (e.g. sqlite:////srv/goldenhub/state/goldenhub.sqlite). Empty: files only.",
    )
    courseware_schemes = List(
        Unicode(), list(rules.GIT_SCHEMES), config=True,
        help="URL schemes a courseware repository may use (default: https, http, git, ssh). "
        "file:// and ext:: are never accepted.",
    )
    name_prefix = Unicode(
        "goldenhub", config=True, help="Prefix of container and volume names, e.g. 'goldenhub' → goldenhub-alice."
    )
    host_gateway = Unicode(
        "", config=True,
        help="The host's address on the student network, given to containers as host.docker.internal "
        "(e.g. 172.30.0.1). Empty: no such alias.",
    )
    pids_limit = Int(1024, config=True, help="Most processes a student container may run (default 1024).")
    courseware_sync_timeout = Int(
        90, config=True, help="Seconds the courseware pull may take before the server starts without it (default 90)."
    )
    courseware_mirror_interval = Float(
        60, config=True,
        help="Seconds between fetches of the hub's mirror of a course repository, which students' starts "
        "merge from (default 60: a burst of starts costs one fetch; 0: fetch at every start; negative: no "
        "mirror, every container pulls from the remote).",
    )
    courseware_mirror_max_bytes = Int(
        2 * 2**30, config=True, help="Largest a course repository's mirror may grow, in bytes (default 2 GiB).",
    )
    gpu_inventory = List(
        None, allow_none=True, config=True,
        help="GPUs to hand out, instead of discovering them through NVML: device indexes or UUIDs "
        "(MIG slices by their MIG-… UUID), e.g. ['0', '1'] or [{'id': 'GPU-…', 'name': 'A100'}]. "
        "Default None: discover; [] means this host has no GPUs for students.",
    )
    gpu_device_requests = Bool(
        True, config=True,
        help="Ask Docker for a server's GPUs with a device request (driver 'nvidia', like `docker run "
        "--gpus device=…`), the default. False: only set NVIDIA_VISIBLE_DEVICES to the allocated ids, "
        "for hosts whose default runtime is nvidia-container-runtime, which reads that variable. "
        "Either way a container is given exactly its allocated GPUs, never 'all'.",
    )
    concurrent_starts = Int(
        config=True,
        help="Servers that may start at the same time; more wait in a queue with their position shown. "
        "Default: the number of CPU cores (a JupyterLab start costs about 2-3 CPU-seconds).",
    )

    @default("concurrent_starts")
    def _default_concurrent_starts(self):
        return max(1, os.cpu_count() or 1)

    queue_timeout = Float(
        1800, config=True, help="Seconds a start may wait in the queue before it is refused (default 1800)."
    )

    @default("start_timeout")
    def _default_start_timeout(self):
        # The hub's own bound covers queueing too; each phase has its own bound inside.
        return int(self.queue_timeout + 3 * self.http_timeout + 600)

    # Recorded in state: course id → home volume name. Never cleared by stop, so a
    # later change of naming rules cannot detach an existing home.
    homes = Dict()
    template_id = Unicode("")
    _start_template: Template | None = None
    gpu_ids = List(Unicode())
    # Why this student's last server stopped or failed when they did not stop it
    # (out of memory, killed, reset by an administrator): shown once, on the next start.
    stop_reason = Unicode("")

    @property
    def stop_reason_text(self) -> str:
        """The stop reason in the current request's language (it may be kept deferred)."""
        return told(self.stop_reason)

    # One allocator and one admission queue per hub process, shared by all spawners.
    _allocators: dict = {}
    _admissions: dict = {}
    # Image labels for the picker's framework notes, shared by all spawners of one hub.
    _image_labels = image_status.LabelCache(ttl_s=30)

    @default("options_form")
    def _default_options_form(self):
        return self._render_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return GoldenSpawner._apply_template_choice

    @property
    def admission(self) -> Admission:
        if self.concurrent_starts not in self._admissions:
            self._admissions[self.concurrent_starts] = Admission(self.concurrent_starts)
        return self._admissions[self.concurrent_starts]

    @property
    def owner(self) -> str:
        return f"{self.user.name}/{self.name}"

    # --- names ----------------------------------------------------------------------------

    @property
    def container_name(self):
        return contract.container_name(self.name_prefix, self.user.name, self.name)

    @default("object_name")
    def _object_name_default(self):
        return self.container_name

    def home_volume_for(self, course: str) -> str:
        if course not in self.homes:
            self.homes = {**self.homes, course: contract.home_volume_name(self.name_prefix, self.user.name, course)}
        return self.homes[course]

    async def ensure_home_volume(self, template: Template) -> str:
        volume = self.home_volume_for(template.course)
        if reset_in_progress(paths.state_dir(), volume):  # a crashed reset's marker does not count
            raise StartFailed(_("Your %(course)s environment is being reset right now; start it again in a "
                                "minute.", course=local(self._course_title(template))), "reset")
        labels = {contract.LABEL_USER: self.user.name, contract.LABEL_COURSE: template.course}
        try:
            await self.docker("inspect_volume", volume)
        except docker.errors.NotFound:
            await self.docker("create_volume", name=volume, labels=labels)
        return volume

    # --- lifecycle ------------------------------------------------------------------------

    def take_gpus(self, template: Template) -> None:
        """Assign GPUs now, or refuse at once with what the student can do instead."""
        try:
            self.gpu_ids = self.allocator.allocate(self.owner, template.gpus, template.gpu_sharing)
        except NoFreeGPU as e:
            catalog = self.load_catalog()
            course = catalog.courses[template.course]
            instead = [t.title for t in self.allowed_templates() if not t.gpus and t.course == template.course]
            raise start_refusal(503, explain_no_gpu(template.title, course.title, template.gpus, e.total, e.free,
                                                    e.waiting, instead), reason="no-gpu") from None

    async def start(self):
        # A fresh progress log before the first await: a progress page that attaches meanwhile
        # must follow this start, not the last one's finished log.
        self._progress = ProgressLog()
        # Resolved once per start (in a thread: it reads the course files): every later step
        # uses this same template.
        template = self._start_template = await asyncio.to_thread(lambda: self.template)
        record = start_events.StartRecord(self.catalog_db_url, self._log_name)  # for the metrics
        await record.queued(self.user.name, self.name, template.course, template.id)
        if self.stop_reason:  # told once: on the start page, then here
            self._progress.emit(_("Last time: %(reason)s", reason=told(self.stop_reason)), 1)
            self.stop_reason = ""
        try:
            await self.check_quota(template)
            self.take_gpus(template)
            if self.gpu_ids:
                self._progress.emit(ngettext("GPU %(ids)s assigned to you", "GPUs %(ids)s assigned to you",
                                             len(self.gpu_ids), ids=", ".join(self.gpu_ids)), 5)
            await self._wait_for_slot()
            await record.admitted()
            try:
                return await self._start_admitted(template)
            finally:
                self.admission.release()
        except BaseException as e:
            await record.finished(e, reset=self._reset_under_way(template))
            await self._clean_failed_start()
            if self._reset_under_way(template):
                # A reset stopped this start (cancelled it, or removed its container):
                # say so, here and on the start page, instead of a bare error.
                self.stop_reason = reset_reason(self._course_title(template), True, self._reset_by_owner(template))
                self._progress.emit(told(self.stop_reason), 100, failed=True)
                if not isinstance(e, asyncio.CancelledError):
                    raise start_refusal(409, told(self.stop_reason)) from None
            if isinstance(e, StartFailed):
                raise start_refusal(500, str(e)) from None
            if isinstance(e, Exception) and not isinstance(e, web.HTTPError):
                # Docker's or another library's text is for the hub log, never for the student.
                self.log.error("Start of %s failed: %r", self._log_name, e)
                raise start_refusal(500, _explain_docker_error(e, template)) from None
            raise
        finally:
            self._progress.finish()
            await record.finished(None)  # a success (a failure's end is already written)

    def _reset_under_way(self, template: Template | None) -> bool:
        home = self.homes.get(template.course) if template else None
        return bool(home) and reset_in_progress(paths.state_dir(), home)

    def _reset_by_owner(self, template: Template | None) -> bool:
        """Whether the reset under way was asked for by this student (they read "You reset...")."""
        home = self.homes.get(template.course) if template else None
        return bool(home) and reset_by_owner(paths.state_dir(), home)

    def _course_title(self, template: Template) -> str:
        try:
            return self.load_catalog().courses[template.course].title
        except (web.HTTPError, KeyError):
            return template.course

    async def _wait_for_slot(self) -> None:
        admission = self.admission
        waiter = asyncio.ensure_future(admission.acquire(self.owner, self.queue_timeout))
        last = None
        try:
            while True:
                done, _ = await asyncio.wait([waiter], timeout=1)
                if done:
                    break
                if self._reset_under_way(self._start_template):
                    raise StartFailed(explain_reset(self._course_title(self._start_template), True,
                                                    self._reset_by_owner(self._start_template)), "reset")
                place = admission.position(self.owner)
                if place and place != last:
                    self._progress.emit(
                        f"Waiting for a free start slot: you are number {place} in the queue "
                        f"({admission.active} starting now)", 8)
                    last = place
        except BaseException:
            # The start was cancelled (the server was stopped while queued) or refused:
            # the waiter leaves the queue, and a slot it already got is handed on.
            waiter.cancel()
            try:
                await waiter
            except (asyncio.CancelledError, QueueTimeout):
                pass
            else:
                admission.release()
            raise
        try:
            waiter.result()
        except QueueTimeout:
            raise StartFailed(ngettext(
                "The server is busy starting other students' environments and yours waited %(num)d second; "
                "please try again.",
                "The server is busy starting other students' environments and yours waited %(num)d seconds; "
                "please try again.", int(self.queue_timeout)), "timeout") from None

    async def _start_admitted(self, template: Template):
        started = time.monotonic()
        self._progress.emit("Starting your environment", 10)
        ip, port = await super().start()
        self._progress.emit("Container started", 60)
        await self._wait_until_up(ip, port, started)
        self._progress.emit("Jupyter server is up", 95)
        return ip, port

    async def pull_image(self, image):
        try:
            await pull_with_progress(self, image, self._progress)
        except StartFailed:
            raise
        except ImageUnavailable as e:
            self.log.error("Image %s for template %s is not on this host and is never pulled: "
                           "it names no registry (%s)", image, self.template_id, e)
            raise StartFailed(self._image_missing(), "image-missing") from None
        except Exception as e:
            self.log.error("Image %s for template %s could not be found or pulled: %s", image, self.template_id, e)
            raise StartFailed(self._image_missing(), "image-missing") from None

    def _image_missing(self) -> str:
        """The student's sentence for a course image that is not here (the hub log names it;
        an administrator builds or publishes it with `goldenhub images build`)."""
        template = self._start_template
        return _("The %(template)s environment is not ready on this server yet; an administrator has been "
                 "told. Try again later.", template=local(template.title) if template else self.template_id)

    async def create_object(self):
        template = await self._resolve_datasets()
        mirror, stale = await self._courseware_mirror(template)
        return await self._create_container(template, mirror, stale)

    async def _resolve_datasets(self) -> Template:
        from hub_ext.catalog.store import DatasetUnavailable, Policy, resolve_datasets

        # Datasets are resolved again at every start (a link may have changed since the
        # template was validated) and the real paths are what Docker binds.
        try:
            template = self._start_template = await asyncio.to_thread(
                resolve_datasets, self._start_template, Policy.from_env())
        except DatasetUnavailable as e:
            self.log.error("Start of %s refused: %s (%s)", self._log_name, e.detail, e)
            # the detail starts "dataset <name>" (hub_ext.catalog.store); the student gets the name only
            name = next((d.name for d in self._start_template.datasets
                         if re.match(rf"dataset {re.escape(d.name)}\b", e.detail)), "")
            raise StartFailed(_("The dataset %(name)s is not available on this server right now; an administrator "
                                "has been told. Try again later.", name=name) if name else
                              _("A dataset of this course is not available on this server right now; an "
                                "administrator has been told. Try again later.")) from None
        return template

    async def _create_container(self, template: Template, mirror: str, stale: str):
        ctx = container.ServerContext(
            user=self.user.name,
            server=self.name,
            container_name=self.container_name,
            home_volume=await self.ensure_home_volume(template),
            network=self.network_name,
            hub_env=self.get_env(),
            command=await self.get_command(),
            port=self.port,
            host_gateway=self.host_gateway,
            gpu_ids=tuple(self.gpu_ids),
            pids_limit=self.pids_limit,
            sync_timeout=self.courseware_sync_timeout,
            courseware_mirror=mirror,
            courseware_stale=stale,
            volume_prefix=self.name_prefix,
        )
        args = container.make_create_args(template, ctx)
        if not self.gpu_device_requests:
            args["host_config"].pop("device_requests", None)
        args["host_config"] = self.client.create_host_config(**args["host_config"])
        try:
            return await self.docker("create_container", **args)
        except Exception as e:
            self.log.error("Docker could not create the container of %s: %s", self._log_name, e)
            raise StartFailed(_explain_docker_error(e, template), "docker") from None

    async def _courseware_mirror(self, template: Template) -> tuple[str, str]:
        """The course repo's mirror to mount and its staleness warning (hub_ext.courseware)."""
        if not template.courseware or self.courseware_mirror_interval < 0:
            return "", ""
        settings = MirrorSettings(paths.state_dir() / "courseware", self.courseware_mirror_interval,
                                  self.courseware_sync_timeout, self.courseware_mirror_max_bytes,
                                  self.host_gateway, tuple(self.courseware_schemes))
        return await asyncio.to_thread(mirror_for_start, template.courseware.repo, settings)

    def get_env(self):
        env = super().get_env()
        return {**env, **branding_container.make_branding_env(env), **lab_warnings.make_lab_env(env)}

    async def start_object(self):
        # The current logo and favicon go in before Jupyter starts (never fatal).
        await branding_container.install_branding(self, paths.state_dir())
        await lab_warnings.install_lab_warnings(self)  # warnings before a stop, in JupyterLab (never fatal)
        self.log.info("goldenhub-phase branded %s %.6f", self.container_name, time.time())  # benchmarks/phases.py
        try:
            await super().start_object()
        except Exception as e:
            self.log.error("Docker could not start the container of %s: %s", self._log_name, e)
            raise StartFailed(_explain_docker_error(e, self._start_template), "docker") from None

    async def get_url(self):
        """Where the server answers, from Docker. JupyterHub asks this after a restart: a
        server whose start was in flight then has no address recorded, and with this
        answer the hub adopts it instead of waiting for it at a wrong address and stopping it."""
        try:
            if not self.object_id and not await self.get_object():
                return await super().get_url()
            ip, port = await self.get_ip_and_port()
        except Exception as e:
            self.log.warning("Could not ask Docker where %s answers: %s", self._log_name, e)
            return await super().get_url()
        return f"http://{ip}:{port}{self.server.base_url if self.server else '/'}"

    async def _wait_until_up(self, ip: str, port: int, started: float) -> None:
        """Wait for the server's HTTP answer inside the admission slot, relaying the
        container's goldenhub messages (courseware sync) as progress. Bounded by
        http_timeout, counted from this server's own start."""
        url = f"http://{ip}:{port}{self.server.base_url if self.server else '/'}api"
        client = AsyncHTTPClient()
        relayed = 0
        while True:
            relayed = await self._relay_container_messages(relayed)
            try:
                await client.fetch(url, request_timeout=2, connect_timeout=1, follow_redirects=False)
                await self._relay_container_messages(relayed)  # lines written since the last relay
                return
            except HTTPClientError as e:
                if e.code != 599:
                    await self._relay_container_messages(relayed)
                    return  # any HTTP answer means the server is up
            except OSError:
                pass
            if self._reset_under_way(self._start_template):
                raise StartFailed(explain_reset(self._course_title(self._start_template), True,
                                                self._reset_by_owner(self._start_template)), "reset")
            if await self.poll() is not None:
                self.log.error("Server %s stopped while starting; its last log line: %s", self._log_name,
                               await self._last_log_line())
                raise StartFailed(_("Your environment stopped while it was starting; your files are kept. Start "
                                    "it again, and if this happens again, tell your instructor."))
            if time.monotonic() - started > self.http_timeout:
                raise StartFailed(ngettext(
                    "Your environment did not answer within %(num)d second of starting; your files are kept. "
                    "Start it again.",
                    "Your environment did not answer within %(num)d seconds of starting; your files are kept. "
                    "Start it again.", int(self.http_timeout)), "timeout")
            await asyncio.sleep(0.2)

    async def _relay_container_messages(self, seen: int) -> int:
        try:
            logs = await self.docker("logs", self.container_id, stdout=True, stderr=False)
        except Exception:
            return seen
        return self._relay_log_lines(logs.decode(errors="replace"), seen)

    def _relay_log_lines(self, log_text: str, seen: int) -> int:
        """The startup script's "goldenhub: " lines after the first `seen`, as progress events;
        returns how many there are now."""
        lines = [ln for ln in log_text.splitlines() if ln.startswith("goldenhub: ")]
        for line in lines[seen:]:
            text = line.removeprefix("goldenhub: ")
            if text.startswith("warning: "):
                self._progress.emit(_("Warning: %(text)s", text=text.removeprefix("warning: ")), 80, warning=True)
            else:
                self._progress.emit(text[:1].upper() + text[1:], 80)
        return len(lines)

    async def _last_log_line(self) -> str:
        try:
            logs = (await self.docker("logs", self.container_id, tail=5)).decode(errors="replace").strip()
        except Exception:
            return "no log"
        return logs.splitlines()[-1] if logs else "no log"

    async def _clean_failed_start(self) -> None:
        """No half-made container and no held GPU after a failed start."""
        released = self.allocator.release(self.owner)
        self.gpu_ids = []
        if released:
            self.log.info("Released GPU %s of failed start of %s", released, self._log_name)
        try:
            if self.object_id or await self.get_object():
                await self.remove_object()
        except Exception as e:
            self.log.warning("Could not remove container of failed start %s: %s", self._log_name, e)
        self.object_id = ""

    async def progress(self):
        # A watcher may attach after the hub marked the spawn pending but before start() made this
        # start's log: wait (at most 10 s) for it rather than end at once or replay the last one.
        log, waited = getattr(self, "_progress", None), 0
        while self._spawn_pending and (log is None or log.finished) and waited < 100:
            await asyncio.sleep(0.1)
            log, waited = getattr(self, "_progress", None), waited + 1
        if log is None:
            return
        async for event in log.stream():
            yield event

    async def poll(self):
        status = await super().poll()
        if status is not None and not self._spawn_pending:
            # Found dead (out of memory, killed, crashed, or a start lost in a hub crash):
            # its GPUs go back to the pool, the student is told why on their next visit,
            # and the dead container goes (its home volume stays). Docker is asked for the
            # container's state again only here, not at every poll of a live server.
            released = self.allocator.release(self.owner)
            self.gpu_ids = []
            container = await self.get_object()
            if container:
                self._note_exit(container.get("State") or {})
                if self.remove:
                    await self.remove_object()
                    self.object_id = ""
            if released:
                self.log.info("Released GPU %s of stopped server %s", released, self._log_name)
        return status

    def _note_exit(self, state: dict) -> None:
        template = self._start_template or self._find_template(self.template_id)
        if template is None:
            return
        reason = explain_exit(state, self._course_title(template), template.memory)
        if reason:
            self.stop_reason = reason
            self.log.warning("Server %s stopped on its own: %s (Docker state %s)", self._log_name, reason,
                             {k: state.get(k) for k in ("ExitCode", "OOMKilled", "Error", "FinishedAt")})

    async def stop(self, now=False):
        try:
            await super().stop(now)
        finally:
            self.allocator.release(self.owner)
            self.gpu_ids = []
            # Stopped by a reset: say so (unless the interrupted start already did).
            if not self.stop_reason and self.homes:
                template = self._start_template or self._find_template(self.template_id)
                if self._reset_under_way(template):
                    self.stop_reason = reset_reason(self._course_title(template), False,
                                                    self._reset_by_owner(template))
            # Stopped by an administrator: the service left a note (hub_ext.homes.stop_notes).
            noted = take_note(paths.state_dir(), self.user.name) if not self.name else ""
            if noted and not self.stop_reason:
                self.stop_reason = noted

    def _find_template(self, template_id: str) -> Template | None:
        """The template of this id in the catalog now; None if it is gone or the catalog is broken."""
        try:
            return self.load_catalog().templates.get(template_id)
        except web.HTTPError:
            return None

    # --- state ------------------------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        if self.homes:
            state[contract.STATE_HOMES] = dict(self.homes)
        if self.template_id:
            state[contract.STATE_TEMPLATE] = self.template_id
        if self.gpu_ids:
            state[contract.STATE_GPUS] = list(self.gpu_ids)
        if self.stop_reason:
            state[contract.STATE_STOP_REASON] = self.stop_reason
        return state

    def load_state(self, state):
        super().load_state(state)
        self.homes = dict(state.get(contract.STATE_HOMES, {}))
        self.template_id = state.get(contract.STATE_TEMPLATE, self.template_id)
        self.stop_reason = state.get(contract.STATE_STOP_REASON, "")
        gpus = list(state.get(contract.STATE_GPUS, []))
        if gpus and self.object_id:
            # Hub restart: take back exactly the GPUs this running server had.
            clash = self.allocator.reserve(self.owner, gpus, self._shares_gpus(self.template_id))
            if clash:
                self.log.error("GPUs %s of %s are unknown or already taken after restart", clash, self._log_name)
            self.gpu_ids = gpus
        elif self.allocator.total:
            # A start in flight when the hub stopped: its GPUs come from its container's labels.
            self.gpu_ids = self.allocator.held_by(self.owner)

    def clear_state(self):
        super().clear_state()
        self.gpu_ids = []


def _explain_docker_error(error: Exception, template: Template) -> str:
    """One sentence for the student, with no server path or Docker text in it; the full
    error goes to the hub log (the caller logs it)."""
    text = str(getattr(error, "explanation", "") or error)
    unreachable = nfs.unreachable_dataset(text, template.datasets)
    if unreachable:
        return nfs.unreachable_sentence(unreachable)
    for d in template.datasets:
        if d.source in text:
            return _("The dataset %(name)s is missing on this server; an administrator has been told. "
                     "Try again later.", name=d.name)
    if "nvidia" in text.lower() or "device driver" in text.lower():
        return _("The GPU driver on this server could not give your environment its GPU; an administrator "
                 "has been told.")
    return _("Your environment could not be created on this server; an administrator has been told. "
             "Try again later, and if this happens again, tell your instructor.")
