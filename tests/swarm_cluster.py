"""A live multi-node Docker Swarm for the tests: a manager and workers, each a Docker-in-Docker
container on the host's engine (the node image from images/dind/, built from the offline base
with Debian's docker.io), joined into one swarm that pulls from the host's registry.

    with SwarmCluster() as cluster:
        cluster.manager.client().services.create(...)
        cluster.kill("w1")

Rules:
- Every object it makes on the host engine carries the cluster's name (`<PREFIX>swarm-...`,
  never `<PREFIX>-...`, which a test hub of the same prefix removes when it starts) and the
  label `goldenhub.test.swarm=<name>`. Starting removes a leftover cluster of the same name
  (a killed run); leaving removes everything, also after a failure while starting.
- Node containers get only the flags DESIGN.md records as working (SYS_ADMIN, NET_ADMIN,
  apparmor and seccomp unconfined, the host's cgroup tree, a volume at /var/lib/docker);
  `--privileged` is refused on these machines. Each node's dockerd listens on its own
  container's address only (tcp://<ip>:2375, no TLS: a test network) and advertises fake
  GPUs as generic resources (`NVIDIA-GPU=fake-<node>-<i>`).
- The host's registry listens on 127.0.0.1 only. A relay in this process listens on the
  cluster bridge's gateway (a free port) and forwards to it; each node relays its own
  127.0.0.1:<registry port> to that. The same image name `127.0.0.1:5000/<repo>:<tag>` is then
  pushed on the host and pulled on every node, trusted without TLS as a loopback registry.
- Node dockerds and the swarm take their subnets from pools the host does not use, so a task
  reaching a host address (the hub's API, the git server) never reaches its own node instead.
- `shared_dirs` appear read-only at the same path on every node, as a dataset export mounted
  on each node of a real cluster would.
- Nested dockerd that cannot start raises NestedDockerUnavailable (the fixture skips with it);
  every other failure is an error. Every wait is bounded and says what did not happen.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field

import docker
import docker.errors
import requests

from hub_ext.paths import REPO_ROOT
from tests.helpers import PREFIX

NODE_CONTEXT = REPO_ROOT / "images" / "dind"
NODE_REPOSITORY = "goldenhub/swarm-node"
BASE_IMAGE = "goldenhub/os-base:bookworm"  # the offline base (hub_ext/images/offline_base.py)
GPU_KIND = "NVIDIA-GPU"
LABEL = "goldenhub.test.swarm"
WAIT_NODE = 120  # seconds for a nested dockerd to answer; it waits for nothing else
WAIT_SWARM = 120  # seconds for nodes to become Ready / Down
WAIT_PULL = 600  # seconds for one image pull on one node (course images are > 1 GB)
DEFAULT_GPUS = {"m": 2, "w1": 4, "w2": 4}  # 10 fake GPUs in all
LIVE_STATES = {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}
# A nested dockerd picks its bridges' subnets (docker0, docker_gwbridge) from 172.17/16 up, as
# the host's does: the same addresses as the host's own networks, so a task would reach its own
# node at, say, 172.18.0.1 instead of the host's hub there. Nodes use pools the host does not.
NODE_ADDRESS_POOL = "10.199.0.0/16"  # the nodes' local bridges
SWARM_ADDRESS_POOL = "10.198.0.0/16"  # the swarm's overlay networks (ingress among them)


class NestedDockerUnavailable(RuntimeError):
    """A Docker engine cannot run inside a container on this machine; the message says what failed."""


class ClusterError(RuntimeError):
    """The cluster did not form or do what was asked; the message says what and where."""


def wait_until(check, timeout: float, what: str, interval: float = 1.0):
    """Poll `check` until it returns something true; a TimeoutError naming `what` and the last error."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = check()
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            result, last = None, exc
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s (last error: {last})")
        time.sleep(interval)


def node_image_ref() -> str:
    """The node image's tag: a hash of its build context, so an edit rebuilds and nothing else does."""
    digest = hashlib.sha256()
    for path in sorted(NODE_CONTEXT.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{NODE_REPOSITORY}:{digest.hexdigest()[:12]}"


def ensure_node_image(host: docker.DockerClient) -> str:
    ref = node_image_ref()
    try:
        host.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    try:
        host.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        raise ClusterError(f"the node image is built FROM {BASE_IMAGE}, which is missing: run "
                           "`goldenhub images build --offline-base` (or .ci/setup) first") from None
    try:
        host.images.build(path=str(NODE_CONTEXT), tag=ref, rm=True, labels={LABEL: "node-image"})
    except docker.errors.BuildError as exc:
        tail = "".join(chunk.get("stream", "") for chunk in exc.build_log)[-2000:]
        raise ClusterError(f"building the swarm node image {ref} failed: {exc}\n{tail}") from exc
    return ref


@dataclass
class Node:
    """One node: a container on the host engine running its own dockerd."""

    key: str  # "m", "w1", ...
    container: str
    gpus: list[str]
    ip: str = ""
    node_id: str = ""

    @property
    def manager(self) -> bool:
        return self.key == "m"

    @property
    def docker_url(self) -> str:
        return f"tcp://{self.ip}:2375"

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_url, timeout=timeout)


class _Relay:
    """A TCP relay from (listen_host, free port) to a target, in threads of this process."""

    def __init__(self, listen_host: str, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server((listen_host, 0))
        self.port = self.server.getsockname()[1]
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, name="swarm-registry-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()
        with self.lock:
            for s in self.sockets:
                s.close()
            self.sockets.clear()


@dataclass
class SwarmCluster:
    """A manager and workers (keys "m", "w1", "w2", ...) with `gpus[key]` fake GPUs each."""

    name: str = f"{PREFIX}swarm"
    gpus: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GPUS))
    registry: str = "127.0.0.1:5000"  # the host's registry, as the host reaches it
    shared_dirs: list[str] = field(default_factory=list)  # host dirs every node sees read-only at the same path
    nodes: dict[str, Node] = field(default_factory=dict)
    pushed: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.host = docker.from_env(timeout=300)
        self.relay: _Relay | None = None
        self.network = f"{self.name}-net"

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> "SwarmCluster":
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def start(self) -> None:
        self.remove()  # a leftover of a killed run
        self._check_registry()
        image = ensure_node_image(self.host)
        network = self.host.networks.create(self.network, driver="bridge", labels={LABEL: self.name})
        network.reload()
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        registry_host, _, registry_port = self.registry.rpartition(":")
        self.relay = _Relay(gateway, (registry_host, int(registry_port)))
        for key, count in self.gpus.items():
            self.nodes[key] = self._start_node(image, key, count, f"{gateway}:{self.relay.port}")
        manager = self.manager
        self._wait_dockerd(manager)
        manager.client().swarm.init(advertise_addr=manager.ip, listen_addr=f"{manager.ip}:2377",
                                    default_addr_pool=[SWARM_ADDRESS_POOL], subnet_size=24)
        token = manager.client().swarm.attrs["JoinTokens"]["Worker"]
        for node in self.workers:
            self._wait_dockerd(node)
            node.client().swarm.join(remote_addrs=[f"{manager.ip}:2377"], join_token=token,
                                     advertise_addr=node.ip, listen_addr=f"{node.ip}:2377")
        for node in self.nodes.values():
            self.wait_node(node.key, "ready")

    def _check_registry(self) -> None:
        try:
            ok = requests.get(f"http://{self.registry}/v2/", timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        if not ok:
            raise ClusterError(f"no registry answers http://{self.registry}/v2/ on the host: "
                               "start it (.ci/setup starts docker-registry there)")

    def _start_node(self, image: str, key: str, gpu_count: int, relay: str) -> Node:
        name = f"{self.name}-{key}"
        gpus = [f"fake-{key}-{i}" for i in range(gpu_count)]
        volume = self.host.volumes.create(name, labels={LABEL: self.name})
        args = [f"--default-address-pool=base={NODE_ADDRESS_POOL},size=24",
                *(a for gpu in gpus for a in ("--node-generic-resource", f"{GPU_KIND}={gpu}"))]
        try:
            container = self.host.containers.run(
                image, args, name=name, hostname=name, detach=True, network=self.network,
                labels={LABEL: self.name},
                environment={"GOLDENHUB_NODE_REGISTRY": f"{self.registry}={relay}"},
                cap_add=["SYS_ADMIN", "NET_ADMIN"],
                security_opt=["apparmor=unconfined", "seccomp=unconfined"],
                volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                         volume.name: {"bind": "/var/lib/docker", "mode": "rw"},
                         **{d: {"bind": d, "mode": "ro"} for d in self.shared_dirs}},
            )
        except docker.errors.APIError as exc:
            raise NestedDockerUnavailable(f"the host engine refused to run the node container {name} "
                                          f"with SYS_ADMIN, NET_ADMIN and unconfined seccomp/apparmor: {exc}") from exc
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        return Node(key, name, gpus, ip=ip)

    def _wait_dockerd(self, node: Node) -> None:
        container = self.host.containers.get(node.container)

        def answers():
            container.reload()
            if container.status != "running":
                raise NestedDockerUnavailable(
                    f"the nested dockerd in {node.container} exited ({container.attrs['State'].get('ExitCode')}):\n"
                    + container.logs(tail=30).decode(errors="replace"))
            return node.client(timeout=5).ping()

        try:
            wait_until(answers, WAIT_NODE, f"the nested dockerd in {node.container} answering on {node.docker_url}")
        except TimeoutError as exc:
            raise NestedDockerUnavailable(f"{exc}\n{container.logs(tail=30).decode(errors='replace')}") from exc

    def remove(self) -> None:
        """Remove every container, volume and network of this cluster, and tags it pushed."""
        if self.relay:
            self.relay.close()
            self.relay = None
        flt = {"label": f"{LABEL}={self.name}"}
        for container in self.host.containers.list(all=True, filters=flt):
            container.remove(force=True, v=True)
        for volume in self.host.volumes.list(filters=flt):
            volume.remove(force=True)
        for network in self.host.networks.list(filters=flt):
            network.remove()
        for ref in self.pushed:
            try:
                self.host.images.remove(ref, noprune=True)
            except docker.errors.ImageNotFound:
                pass
        self.pushed.clear()
        self.nodes.clear()

    # --- nodes -----------------------------------------------------------------------------

    @property
    def manager(self) -> Node:
        return self.nodes["m"]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.manager]

    @property
    def manager_url(self) -> str:
        return self.manager.docker_url

    def api(self) -> docker.DockerClient:
        """A client of the manager's engine: the swarm's API."""
        return self.manager.client()

    def swarm_node(self, key: str) -> dict:
        """The manager's view of a node (`docker node inspect`)."""
        return self.api().api.inspect_node(f"{self.name}-{key}")

    def node_of(self, node_id: str) -> Node:
        for node in self.nodes.values():
            if not node.node_id:
                node.node_id = self.swarm_node(node.key)["ID"]
            if node.node_id == node_id:
                return node
        raise ClusterError(f"no node of cluster {self.name} has the swarm id {node_id}")

    def wait_node(self, key: str, state: str) -> dict:
        """Wait until the manager reports the node in `state` ("ready" or "down")."""
        return wait_until(lambda: (n := self.swarm_node(key))["Status"]["State"] == state and n,
                          WAIT_SWARM, f"node {self.name}-{key} becoming {state}")

    def kill(self, key: str) -> None:
        """`docker kill` the node's container: its engine and every task on it die at once."""
        self.host.containers.get(self.nodes[key].container).kill()

    def revive(self, key: str) -> None:
        """Start a killed node's container again (same volume, so same swarm identity)."""
        node = self.nodes[key]
        self.host.containers.get(node.container).start()
        self._wait_dockerd(node)
        self.wait_node(key, "ready")

    # --- images ----------------------------------------------------------------------------

    def push(self, source: str, repository: str) -> str:
        """Tag a host image `source` as <registry>/<repository> and push it; returns that name."""
        ref = f"{self.registry}/{repository}"
        repo, _, tag = ref.rpartition(":")
        self.host.images.get(source).tag(repo, tag)
        self.pushed.append(ref)
        for line in self.host.images.push(repo, tag, stream=True, decode=True):
            if "error" in line:
                raise ClusterError(f"pushing {ref} failed: {line['error']}")
        return ref

    def pull_everywhere(self, ref: str) -> None:
        """Pull `ref` on every running node, in parallel, each bounded by WAIT_PULL."""
        errors: list[str] = []

        def pull(node: Node) -> None:
            try:
                node.client(timeout=WAIT_PULL).images.pull(ref)
            except docker.errors.DockerException as exc:
                errors.append(f"{node.container}: {exc}")

        threads = [threading.Thread(target=pull, args=(n,)) for n in self.nodes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_PULL + 30)
        if errors or any(t.is_alive() for t in threads):
            raise ClusterError(f"pulling {ref} on every node failed: {errors or 'a pull did not end'}")

    # --- tasks -----------------------------------------------------------------------------

    def remove_services(self) -> None:
        """Remove every service of the swarm (all are this cluster's) and wait until their tasks are gone."""
        api = self.api().api
        for service in api.services():
            api.remove_service(service["ID"])
        # A removed service's tasks hold their GPUs until their containers have stopped.
        wait_until(lambda: not [t for t in api.tasks() if t["Status"]["State"] in LIVE_STATES], WAIT_SWARM,
                   f"the tasks of the removed services of {self.name} ending")

    def tasks(self, service: str) -> list[dict]:
        """A service's tasks; none when there is no such service."""
        try:
            return self.api().api.tasks(filters={"service": service})
        except docker.errors.NotFound:
            return []

    def running_task(self, service: str) -> dict | None:
        for task in self.tasks(service):
            if task["DesiredState"] == "running" and task["Status"]["State"] == "running":
                return task
        return None

    def task_env(self, task: dict) -> dict[str, str]:
        """The environment of the process running in a task's container, read from /proc on its
        node (`docker exec` into a task whose capabilities are all dropped fails on a nested node:
        "error executing setns process")."""
        node = self.node_of(task["NodeID"])
        pid = task["Status"]["ContainerStatus"]["PID"]
        code, output = self.host.containers.get(node.container).exec_run(["cat", f"/proc/{pid}/environ"])
        if code != 0:
            raise ClusterError(f"reading /proc/{pid}/environ on {node.container} exited {code}: {output[-300:]!r}")
        return dict(item.split("=", 1) for item in output.decode().split("\0") if "=" in item)

    def container_env(self, task: dict) -> dict[str, str]:
        """The environment a task's container was created with (what Swarm set, e.g. the
        DOCKER_RESOURCE_* ids the NVIDIA runtime reads), from its node's engine."""
        node = self.node_of(task["NodeID"])
        attrs = node.client().api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
        return dict(item.split("=", 1) for item in attrs["Config"]["Env"] or [] if "=" in item)
