"""A publish's smoke test: the new image in a throw-away container made exactly like a
student's, its Jupyter server asked to answer, the course's notebooks run top to bottom
inside it, and where the template asks for GPUs, a GPU looked for.

The container's create arguments come from spawner.container.make_create_args, the same pure
builder a student's start uses (image, user 1000, CPU and memory limits, dropped
capabilities, no-new-privileges, pids limit, network, dataset mounts read-only, environment,
GPU device requests from ServerContext.gpu_ids), for a synthetic user `smoke-<course>` with
a scratch home volume. What differs from a student's start, and why:
- the command is a plain `jupyter server` with a random token (JUPYTER_TOKEN) instead of
  jupyterhub-singleuser, and the hub's JUPYTERHUB_* variables are absent: there is no hub
  for it to talk to;
- the courseware is the checkout the publish was given, copied into the scratch home at the
  template's courseware target (the home itself for a template without courseware), owned by
  uid 1000, before the start (without .git); the courseware variables are taken out of the
  environment, so the startup script pulls nothing;
- the container and the home carry LABEL_KIND=KIND_SMOKE_TEST, the owner process and an
  expiry, and are removed at the end whatever happens (failure, Ctrl-C included).

Checks, in order, each logged as one line with its time:
1. GET /api/status with the token answers within SERVER_WAIT_S, probed from this host at
   the container's address on its network; a container that exits fails at once.
2. Notebooks (which: hub_ext.images.smoke_plan) run with nbclient inside the container
   (docker exec as uid 1000, in the notebook's own directory, so relative paths to datasets
   work), each within its budget: hub_ext.images.smoke_runner. Cells are named by code-cell
   number: the N-th code cell from the top, markdown cells not counted (the In [N] a
   top-to-bottom run shows).
3. GPU (templates with gpus > 0 only): with gpu_ids, the container gets the first
   template.gpus of them and must see a GPU (torch.cuda, else nvidia-smi -L); without any,
   the check is skipped with a line saying so (not a failure).

Manual GPU probe (on a GPU machine):
    python -m hub_ext.images.smoke --gpu-probe [--image IMAGE --gpu 0]
"""

from __future__ import annotations

import json
import os
import secrets
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import docker.errors

from hub_ext import contract
from hub_ext.catalog.model import HOME, Template
from hub_ext.homes.owner import Owner
from hub_ext.i18n import _, ngettext
from hub_ext.images import smoke_runner
from hub_ext.images.smoke_plan import Notebook, SmokeFailed, plan_notebooks
from spawner import container as student_container

SERVER_WAIT_S = 60  # the Jupyter server must answer within this
GPU_PROBE_S = 120  # the GPU probe's own bound
EXEC_MARGIN_S = 60  # beyond a notebook's budget before the host stops waiting for it
EXPIRY_MARGIN_S = 600  # beyond the planned run before a smoke container counts as stale
LOG_TAIL_LINES = 20
PORT = 8888
COURSEWARE_ENV = ("GOLDENHUB_COURSEWARE_REPO", "GOLDENHUB_COURSEWARE_BRANCH", "GOLDENHUB_COURSEWARE_TARGET",
                  "GOLDENHUB_SYNC_TIMEOUT")


@dataclass
class SmokeReport:
    image: str
    template: str
    notebooks: list[str] = field(default_factory=list)  # run, each without an error
    skipped: list[str] = field(default_factory=list)  # opted out by their metadata
    gpu: str = ""  # what the GPU check found or why it was skipped; '' for a CPU template
    seconds: float = 0.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- pure: the container's create arguments ---------------------------------------------------

def smoke_user(course: str) -> str:
    return f"smoke-{course}"


def make_smoke_args(template: Template, image: str, *, prefix: str, network: str, gateway: str, run_id: int,
                    token: str, gpu_ids: tuple[str, ...], owner: str, expires: datetime) -> dict:
    """create_container keyword arguments (host_config still as kwargs): a student's, with
    the differences the module docstring lists."""
    ctx = student_container.ServerContext(
        user=smoke_user(template.course),
        server="",
        container_name=contract.smoke_container_name(prefix, template.course, run_id),
        home_volume=contract.smoke_home_name(prefix, template.course, run_id),
        network=network,
        hub_env={"JUPYTER_TOKEN": token},
        command=["jupyter", "server", "--ip=0.0.0.0", f"--port={PORT}", "--no-browser",
                 f"--ServerApp.root_dir={HOME}"],
        port=PORT,
        host_gateway=gateway,
        gpu_ids=tuple(gpu_ids),
        extra_labels=smoke_labels(template.course, owner, expires),
    )
    args = student_container.make_create_args(replace(template, image=image), ctx)
    for key in COURSEWARE_ENV:
        args["environment"].pop(key, None)
    return args


def smoke_labels(course: str, owner: str, expires: datetime) -> dict[str, str]:
    return {contract.LABEL_KIND: contract.KIND_SMOKE_TEST, contract.LABEL_OWNER: owner,
            contract.LABEL_EXPIRES: expires.isoformat(), contract.LABEL_COURSE: course}


# --- Docker ----------------------------------------------------------------------------------

def _stale(labels: dict, now: datetime) -> bool:
    """Rule: stale when its owner process is gone, or when its expiry has passed (whoever owns it)."""
    owner = Owner.parse(labels.get(contract.LABEL_OWNER))
    if owner is None or owner.alive() is False:
        return True
    try:
        return now >= datetime.fromisoformat(labels.get(contract.LABEL_EXPIRES, ""))
    except (TypeError, ValueError):
        return True


def cleanup_stale_smoke(client: docker.APIClient, prefix: str, now: datetime | None = None) -> list[str]:
    """Remove this deployment's smoke containers, then scratch homes, that are stale (_stale).
    Returns the names removed."""
    now = now or utcnow()
    kind = {"label": contract.label_filter(contract.LABEL_KIND, contract.KIND_SMOKE_TEST)}
    mine = f"{prefix}-smoke-"
    removed = []
    for c in client.containers(all=True, filters=kind):
        name = next((n.lstrip("/") for n in c.get("Names") or []), "")
        if name.startswith(mine) and _stale(c.get("Labels") or {}, now):
            try:
                client.remove_container(c["Id"], force=True)
                removed.append(name)
            except docker.errors.NotFound:
                pass
    for v in client.volumes(filters=kind).get("Volumes") or []:
        if v["Name"].startswith(mine) and _stale(v.get("Labels") or {}, now):
            try:
                client.remove_volume(v["Name"], force=True)
                removed.append(v["Name"])
            except docker.errors.APIError:  # gone, or still mounted by a container not stale
                pass
    return removed


def _courseware_tar(courseware: Path, target: str) -> tempfile.SpooledTemporaryFile:
    """A tar of the courseware under `target` (and its parent directories), every entry
    owned by uid 1000 (gid 100, as the image's jovyan), .git left out, symlinks as links."""
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if ".git" in PurePosixPath(info.name).parts:
            return None
        info.uid, info.gid, info.uname, info.gname = 1000, 100, "", ""
        return info

    data = tempfile.SpooledTemporaryFile(max_size=16 * 2**20)
    with tarfile.open(fileobj=data, mode="w") as tar:
        parts = PurePosixPath(target).parts if target else ()
        for i in range(1, len(parts)):
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(owned(info))
        tar.add(str(courseware), arcname=target or ".", filter=owned)
    data.seek(0)
    return data


def _log_tail(client: docker.APIClient, container_id: str) -> str:
    try:
        return client.logs(container_id, tail=LOG_TAIL_LINES).decode(errors="replace").strip()
    except docker.errors.APIError:
        return ""


def _wait_for_server(client, container_id: str, network: str, token: str, image: str) -> float:
    started = time.monotonic()
    ip = ""
    while time.monotonic() - started < SERVER_WAIT_S:
        info = client.inspect_container(container_id)
        if not (info.get("State") or {}).get("Running"):
            break
        ip = ip or ((info.get("NetworkSettings") or {}).get("Networks") or {}).get(network, {}).get("IPAddress", "")
        if ip:
            request = urllib.request.Request(f"http://{ip}:{PORT}/api/status",
                                             headers={"Authorization": f"token {token}"})
            try:
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.5)
    last = "\n".join(_log_tail(client, container_id).splitlines()[-5:]) or _("no log")
    raise SmokeFailed(_("the Jupyter server in %(image)s did not start: %(log)s", image=image, log=last))


def _exec(client, container_id: str, argv: list[str], workdir: str, bound_s: float) -> tuple[dict | None, str]:
    """Run smoke_runner inside the container as uid 1000, bounded (coreutils timeout inside,
    and this host stops waiting at bound_s + EXEC_MARGIN_S). Returns (its result, {"ok": false,
    "timeout": true} when it ran past its bound, or None when it crashed; its output)."""
    out = f"/tmp/goldenhub-smoke-{secrets.token_hex(4)}.out"
    script = Path(smoke_runner.__file__).read_text()
    command = ["sh", "-c", f'exec timeout -s KILL {int(bound_s) + 30} python -c "$0" "$@" >{out} 2>&1',
               script, *argv]
    exec_id = client.exec_create(container_id, command, user="1000", workdir=workdir)["Id"]
    client.exec_start(exec_id, detach=True)
    deadline = time.monotonic() + bound_s + EXEC_MARGIN_S
    while (state := client.exec_inspect(exec_id)).get("Running") and time.monotonic() < deadline:
        time.sleep(0.5)
    read = client.exec_create(container_id, ["tail", "-c", "65536", out], user="1000")["Id"]
    text = client.exec_start(read).decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith(smoke_runner.RESULT_MARK):
            try:
                return json.loads(line[len(smoke_runner.RESULT_MARK):]), text
            except ValueError:
                break
    # No result: killed at its bound (timeout's KILL gives 137; or still running here), or it crashed.
    timed_out = state.get("Running") or state.get("ExitCode") == 137
    return ({"ok": False, "timeout": True} if timed_out else None), text


def _run_notebook(client, container_id: str, notebook: Notebook, home_dir: str, log) -> None:
    started = time.monotonic()
    where = PurePosixPath(home_dir, notebook.path)
    result, output = _exec(client, container_id, ["notebook", where.name, str(notebook.budget_s)],
                           str(where.parent), notebook.budget_s)
    tail = "\n".join(output.strip().splitlines()[-LOG_TAIL_LINES:])
    if result is None:
        last = (output.strip().splitlines() or [_("no log")])[-1]
        raise SmokeFailed(_("notebook %(notebook)s could not run: %(error)s", notebook=notebook.path,
                            error=last[:300]), tail)
    if result.get("timeout"):
        raise SmokeFailed(ngettext("notebook %(notebook)s did not finish within its budget of %(num)d second",
                                   "notebook %(notebook)s did not finish within its budget of %(num)d seconds",
                                   notebook.budget_s, notebook=notebook.path), tail)
    if result.get("ename") is not None:
        raise SmokeFailed(_("notebook %(notebook)s failed in code cell %(cell)d: %(ename)s: %(evalue)s",
                            notebook=notebook.path, cell=int(result.get("cell", 0)), ename=result["ename"],
                            evalue=result.get("evalue", "")), tail)
    if not result.get("ok"):
        raise SmokeFailed(_("notebook %(notebook)s could not run: %(error)s", notebook=notebook.path,
                            error=str(result.get("error", ""))[:300]), tail)
    log(ngettext("Notebook %(notebook)s: %(num)d code cell ran without an error in %(seconds).1f s",
                 "Notebook %(notebook)s: %(num)d code cells ran without an error in %(seconds).1f s",
                 int(result.get("cells", 0)), notebook=notebook.path, seconds=time.monotonic() - started))


def _check_gpu(client, container_id: str, gpu_ids: tuple[str, ...], log) -> str:
    started = time.monotonic()
    result, output = _exec(client, container_id, ["gpu-probe"], HOME, GPU_PROBE_S)
    found = str((result or {}).get("found", "")) or output.strip()[-300:]
    if not result or not result.get("ok"):
        raise SmokeFailed(_("the image does not see its GPU %(ids)s: %(found)s", ids=", ".join(gpu_ids),
                            found=found), output)
    log(_("GPU check: %(how)s sees %(found)s (%(seconds).1f s)", how=result.get("how", ""), found=found,
          seconds=time.monotonic() - started))
    return found


def _remove(client, container_id: str | None, volume: str, log) -> None:
    if container_id:
        try:
            client.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            log(_("Could not remove the smoke-test container: %(error)s", error=e))
    try:
        client.remove_volume(volume, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        log(_("Could not remove the smoke-test home %(volume)s: %(error)s", volume=volume, error=e))


def run_smoke(client: docker.APIClient, template: Template, image: str, *, prefix: str, network: str,
              gateway: str, run_id: int, courseware: Path | None, notebooks: list[str] | None = None,
              budget_s: int = 300, gpu_ids: tuple[str, ...] = (), log=print) -> SmokeReport:
    """Smoke-test `image` as `template`'s students would get it (rules: module docstring).
    Raises SmokeFailed with a sentence (and the log tail in .detail); blocking: run it in a
    thread or a process of its own, never on an event loop."""
    from hub_ext.catalog.store import DatasetUnavailable, Policy, resolve_datasets

    started = time.monotonic()
    for name in cleanup_stale_smoke(client, prefix):
        log(_("Removed a leftover smoke test: %(name)s", name=name))
    report = SmokeReport(image=image, template=template.id)
    planned, report.skipped = plan_notebooks(Path(courseware), notebooks, budget_s) if courseware else ([], [])
    use_gpus = tuple(gpu_ids)[:template.gpus] if template.gpus else ()
    try:
        template = resolve_datasets(template, Policy.from_env())
    except DatasetUnavailable as e:
        raise SmokeFailed(_("a dataset of template %(template)s is not available: %(detail)s",
                            template=template.id, detail=e.detail)) from None
    total = SERVER_WAIT_S + sum(n.budget_s + EXEC_MARGIN_S for n in planned) + GPU_PROBE_S
    token = secrets.token_hex(24)
    args = make_smoke_args(template, image, prefix=prefix, network=network, gateway=gateway, run_id=run_id,
                           token=token, gpu_ids=use_gpus, owner=Owner.current().label(),
                           expires=utcnow() + timedelta(seconds=total + EXPIRY_MARGIN_S))
    volume = contract.smoke_home_name(prefix, template.course, run_id)
    target = template.courseware.target if template.courseware else ""
    home_dir = str(PurePosixPath(HOME, target)) if target else HOME
    container_id = None
    try:
        client.create_volume(name=volume, labels=args["labels"] | {contract.LABEL_USER: smoke_user(template.course)})
        args["host_config"] = client.create_host_config(**args["host_config"])
        try:
            container_id = client.create_container(**args)["Id"]
            if courseware:
                with _courseware_tar(Path(courseware), target) as data:
                    client.put_archive(container_id, HOME, data)
            client.start(container_id)
        except docker.errors.APIError as e:
            raise SmokeFailed(_("Docker could not create or start the smoke-test container of %(image)s: "
                                "%(error)s", image=image, error=str(e.explanation or e)[:400])) from None
        log(_("Smoke-test container %(name)s started (%(seconds).1f s)", name=args["name"],
              seconds=time.monotonic() - started))
        waited = _wait_for_server(client, container_id, network, token, image)
        log(_("The Jupyter server answered in %(seconds).1f s", seconds=waited))
        if not courseware:
            log(_("No courseware given: no notebooks to run"))
        for rel in report.skipped:
            log(_("Notebook %(notebook)s skipped: its metadata opts out of the smoke test", notebook=rel))
        for notebook in planned:
            _run_notebook(client, container_id, notebook, home_dir, log)
            report.notebooks.append(notebook.path)
        if template.gpus and use_gpus:
            report.gpu = _check_gpu(client, container_id, use_gpus, log)
        elif template.gpus:
            report.gpu = _("GPU check skipped: this host has no free GPU")
            log(report.gpu)
    except SmokeFailed as e:
        # For the publish log: what the runner printed, then the container's own log.
        if container_id:
            e.detail = "\n".join(part for part in (e.detail, "--- container log ---",
                                                   _log_tail(client, container_id)) if part)
        raise
    finally:
        _remove(client, container_id, volume, log)
    report.seconds = time.monotonic() - started
    log(_("Smoke test passed in %(seconds).1f s", seconds=report.seconds))
    return report


def _main(argv: list[str]) -> int:
    """--gpu-probe: the in-container probe run here; with --image IMAGE [--gpu ID]: in a
    container of that image given exactly that GPU, as a smoke test would make it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hub_ext.images.smoke")
    parser.add_argument("--gpu-probe", action="store_true", required=True)
    parser.add_argument("--image", help="run the probe in a container of this image")
    parser.add_argument("--gpu", default="0", help="the device id the container gets (default 0)")
    options = parser.parse_args(argv)
    if not options.image:
        result = smoke_runner.gpu_probe()
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    client = docker.APIClient(**docker.utils.kwargs_from_env())
    labels = smoke_labels("gpu-probe", Owner.current().label(), utcnow() + timedelta(seconds=GPU_PROBE_S + 60))
    container_id = None
    try:
        container_id = client.create_container(
            options.image, ["python", "-c", Path(smoke_runner.__file__).read_text(), "gpu-probe"],
            name=f"goldenhub-smoke-gpu-probe-{os.getpid()}", user="1000", labels=labels,
            environment={"NVIDIA_VISIBLE_DEVICES": options.gpu},
            host_config=client.create_host_config(device_requests=[docker.types.DeviceRequest(
                driver="nvidia", device_ids=[options.gpu], capabilities=[["gpu"]])]))["Id"]
        client.start(container_id)
        code = client.wait(container_id, timeout=GPU_PROBE_S)["StatusCode"]
        print(client.logs(container_id).decode(errors="replace").strip())
        return code
    except docker.errors.APIError as e:
        print(f"Docker could not run {options.image} with GPU {options.gpu}: {e.explanation or e}")
        return 1
    finally:
        if container_id:
            client.remove_container(container_id, force=True)

if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
