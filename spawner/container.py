"""How a template becomes a container: pure functions from a template and a user's
context to the Docker create arguments. No Docker calls here; tests compare dicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from docker.types import DeviceRequest, DriverConfig, Mount

from hub_ext import contract
from hub_ext.catalog import nfs
from hub_ext.catalog.model import HOME, Template
from hub_ext.courseware.rules import MIRROR_MOUNT, MIRROR_SOURCE

# Runs in the student's container before the Jupyter server. Courseware is pulled with
# nbgitpuller's rules: the student's edits win, clashing files of theirs are renamed,
# nothing of theirs is deleted. A remote that is down must not keep the student out:
# the sync is bounded by a timeout, and on failure the server starts with a warning.
STARTUP_SCRIPT = r"""
# "goldenhub-phase NAME EPOCH" lines (stdout, never shown to students) mark where a start's
# time goes; benchmarks/spawn.py reads them from the container log.
echo "goldenhub-phase script $(date +%s.%N)"
# A full home must not keep the student out of it: Jupyter's runtime files go to /tmp, and
# the student is told to make room (their files are all still there).
free_kib=$(df -Pk "$HOME" 2>/dev/null | awk 'NR == 2 {print $4}')
if [ -n "$free_kib" ] && [ "$free_kib" -lt "${GOLDENHUB_MIN_FREE_KIB:-8192}" ]; then
  export JUPYTER_RUNTIME_DIR=/tmp/jupyter-runtime
  echo "goldenhub: warning: your home is full (${free_kib} KiB free): your files are all there, but new work cannot be saved until you delete or download files you no longer need"
fi
note="$HOME/COURSEWARE-NOT-UPDATED.txt"
if [ -n "${GOLDENHUB_COURSEWARE_REPO:-}" ]; then
  echo "goldenhub-phase courseware $(date +%s.%N)"
  cd "$HOME" || exit 1
  # The hub's read-only mirror when it has one, else the remote; an earlier start's checkout
  # follows this start's source. The mirror belongs to the hub's user: git trusts exactly that
  # directory, through a global config that includes the student's own (git hands neither
  # -c nor GIT_CONFIG_COUNT to a local clone's upload-pack).
  src="${GOLDENHUB_COURSEWARE_SOURCE:-$GOLDENHUB_COURSEWARE_REPO}"
  if [ -d "$GOLDENHUB_COURSEWARE_TARGET/.git" ]; then
    git -C "$GOLDENHUB_COURSEWARE_TARGET" remote set-url origin "$src" >/dev/null 2>&1
  fi
  gitconfig=/tmp/goldenhub-gitconfig
  printf '[include]\n\tpath = ~/.gitconfig\n\tpath = ~/.config/git/config\n' > "$gitconfig"
  if [ -n "${GOLDENHUB_COURSEWARE_SOURCE:-}" ]; then
    printf '[safe]\n\tdirectory = %s\n' "${GOLDENHUB_COURSEWARE_SOURCE#file://}" >> "$gitconfig"
  fi
  # A first start has nothing to merge: where the target does not exist, nbgitpuller only
  # clones (its initialize_repo: this same git clone, same depth), so the shell does it and
  # spares the start nbgitpuller's Python process. Every later start merges with gitpuller.
  depth="${NBGITPULLER_DEPTH:-1}"
  case "$depth" in ''|*[!0-9]*) depth=1 ;; esac
  depth_args=""
  [ "$depth" -gt 0 ] && depth_args="--depth $depth"
  if [ -e "$GOLDENHUB_COURSEWARE_TARGET" ]; then
    GIT_CONFIG_GLOBAL="$gitconfig" timeout "${GOLDENHUB_SYNC_TIMEOUT:-90}" gitpuller "$src" \
      "$GOLDENHUB_COURSEWARE_BRANCH" "$GOLDENHUB_COURSEWARE_TARGET" >/tmp/goldenhub-sync.log 2>&1
  else
    GIT_CONFIG_GLOBAL="$gitconfig" timeout "${GOLDENHUB_SYNC_TIMEOUT:-90}" git clone $depth_args \
      --branch "$GOLDENHUB_COURSEWARE_BRANCH" -- "$src" "$GOLDENHUB_COURSEWARE_TARGET" >/tmp/goldenhub-sync.log 2>&1
  fi
  synced=$?
  if [ "$synced" -eq 0 ]; then
    if [ -n "${GOLDENHUB_COURSEWARE_STALE:-}" ]; then
      printf '%s\n' \
        "The course materials could not be updated when your server started" \
        "(from $GOLDENHUB_COURSEWARE_REPO, branch $GOLDENHUB_COURSEWARE_BRANCH): $GOLDENHUB_COURSEWARE_STALE." \
        "Your files in ~/$GOLDENHUB_COURSEWARE_TARGET are untouched. Restart your server later" \
        "to get the latest materials. This note disappears after the next successful update." > "$note"
      echo "goldenhub: warning: $GOLDENHUB_COURSEWARE_STALE"
    else
      rm -f "$note"
      echo "goldenhub: courseware synced into ~/$GOLDENHUB_COURSEWARE_TARGET"
    fi
  else
    printf '%s\n' \
      "The course materials could not be updated when your server started" \
      "(from $GOLDENHUB_COURSEWARE_REPO, branch $GOLDENHUB_COURSEWARE_BRANCH)." \
      "Your files in ~/$GOLDENHUB_COURSEWARE_TARGET are untouched. Restart your server later" \
      "to get the latest materials. This note disappears after the next successful update." > "$note"
    echo "goldenhub: warning: courseware could not be updated; your files in ~/$GOLDENHUB_COURSEWARE_TARGET are untouched"
    tail -n 20 /tmp/goldenhub-sync.log >&2
  fi
fi
echo "goldenhub-phase server $(date +%s.%N)"
exec "$@"
"""


@dataclass(frozen=True)
class ServerContext:
    """Everything about one start that is not in the template."""

    user: str
    server: str
    container_name: str
    home_volume: str
    network: str
    hub_env: dict[str, str]
    command: list[str]  # the single-user server command and its arguments
    port: int = 8888
    host_gateway: str = ""  # the host's address on the network, as host.docker.internal
    gpu_ids: tuple[str, ...] = ()  # devices allocated to this server
    pids_limit: int = 1024
    sync_timeout: int = 90
    courseware_mirror: str = ""  # the hub's mirror of the course repo (host path), mounted read-only
    courseware_stale: str = ""  # the warning when that mirror could not be refreshed
    extra_labels: dict[str, str] = field(default_factory=dict)
    volume_prefix: str = "goldenhub"  # the spawner's name_prefix: NFS dataset volumes are named with it


def make_environment(template: Template, ctx: ServerContext) -> dict[str, str]:
    env = dict(ctx.hub_env)
    env.update(
        GOLDENHUB_COURSE=template.course,
        GOLDENHUB_TEMPLATE=template.id,
        # Exactly the allocated devices, "void" for none: never an image's own "all".
        NVIDIA_VISIBLE_DEVICES=",".join(ctx.gpu_ids) or "void",
        GIT_TERMINAL_PROMPT="0",
        # What jupyter-resource-usage shows the student as their limits (JupyterHub's own
        # get_env sets these only from Spawner.mem_limit/cpu_limit, which goldenhub refuses):
        # the template's, in bytes and CPUs, whatever the hub's environment said.
        MEM_LIMIT=str(template.memory),
        CPU_LIMIT=f"{template.cpu:g}",
    )
    if template.courseware:
        env.update(
            GOLDENHUB_COURSEWARE_REPO=template.courseware.repo,
            GOLDENHUB_COURSEWARE_BRANCH=template.courseware.branch,
            GOLDENHUB_COURSEWARE_TARGET=template.courseware.target,
            GOLDENHUB_SYNC_TIMEOUT=str(ctx.sync_timeout),
        )
        if ctx.courseware_mirror:
            env["GOLDENHUB_COURSEWARE_SOURCE"] = MIRROR_SOURCE
        if ctx.courseware_mirror and ctx.courseware_stale:
            env["GOLDENHUB_COURSEWARE_STALE"] = ctx.courseware_stale
    return env


def make_mounts(template: Template, home_volume: str, courseware_mirror: str = "",
                volume_prefix: str = "goldenhub") -> list[Mount]:
    """The student's home volume, then each dataset read-only, then the course repo's mirror
    read-only (that one directory). Nothing else from the host. An nfs:// dataset is a named
    volume of the local driver (hub_ext.catalog.nfs), made by Docker at create if missing."""
    mounts = [Mount(target=HOME, source=home_volume, type="volume")]
    for d in template.datasets:
        if nfs.is_nfs(d.source):
            args = nfs.docker_volume_args(volume_prefix, nfs.parse(d.source))
            mounts.append(Mount(target=d.target, source=args["name"], type="volume", read_only=True, no_copy=True,
                                labels=args["labels"], driver_config=DriverConfig("local", args["driver_opts"])))
            continue
        mounts.append(Mount(target=d.target, source=d.source, type="bind", read_only=True))
    if courseware_mirror and template.courseware:
        mounts.append(Mount(target=MIRROR_MOUNT, source=courseware_mirror, type="bind", read_only=True))
    return mounts


def make_labels(template: Template, ctx: ServerContext) -> dict[str, str]:
    labels = {
        contract.LABEL_USER: ctx.user,
        contract.LABEL_SERVER: ctx.server,
        contract.LABEL_COURSE: template.course,
        contract.LABEL_TEMPLATE: template.id,
        contract.LABEL_HOME_VOLUME: ctx.home_volume,
        contract.LABEL_GPUS: ",".join(ctx.gpu_ids),
    }
    labels.update(ctx.extra_labels)
    return labels


def make_host_config(template: Template, ctx: ServerContext) -> dict:
    """Keyword arguments for docker's create_host_config."""
    cpu_period = 100_000
    host_config = dict(
        mounts=make_mounts(template, ctx.home_volume, ctx.courseware_mirror, ctx.volume_prefix),
        network_mode=ctx.network,
        mem_limit=template.memory,
        memswap_limit=template.memory,  # no swap beyond the memory limit
        cpu_period=cpu_period,
        cpu_quota=int(template.cpu * cpu_period),
        shm_size=template.shm_size,
        pids_limit=ctx.pids_limit,
        privileged=False,
        cap_drop=["ALL"],  # jupyter as uid 1000 needs no capabilities
        security_opt=["no-new-privileges"],
        auto_remove=False,
    )
    if ctx.gpu_ids:
        host_config["device_requests"] = [
            DeviceRequest(driver="nvidia", device_ids=list(ctx.gpu_ids), capabilities=[["gpu"]])
        ]
    if ctx.host_gateway:
        host_config["extra_hosts"] = {"host.docker.internal": ctx.host_gateway}
    return host_config


def make_create_args(template: Template, ctx: ServerContext) -> dict:
    """Keyword arguments for docker's create_container (host_config still as kwargs)."""
    return dict(
        image=template.image,
        name=ctx.container_name,
        command=["sh", "-c", STARTUP_SCRIPT, "goldenhub-start", *ctx.command],
        environment=make_environment(template, ctx),
        labels=make_labels(template, ctx),
        ports={f"{ctx.port}/tcp": None},
        user="1000",
        working_dir=HOME,
        host_config=make_host_config(template, ctx),
    )
