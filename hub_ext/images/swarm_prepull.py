"""Pre-pulling a published image on every node of a Docker Swarm (backend: swarm).

The hub reaches only the swarm's manager, not each node's engine, so a publish pre-pulls with a
one-shot *global service* (mode Global, restart condition none): Swarm runs one task on every
node that is up, each node pulls the by-digest reference from the registry and runs `true` in
it (uid 1000, no capability, no mount, no network port), nothing restarts it, and the service
is removed when every task has ended or after a bound (its task containers go with it). Not a
GlobalJob: on docker.io 20.10 a removed job leaves its completed containers on the nodes, and
they would keep the old image from being pruned. The result is the Docker backend's: one host, "swarm",
ok or failed with the nodes that did not pull (hub_ext.images.push.prepull reports it; students
on those nodes pull at start). A node added later pulls at its first start.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable, Iterator

import docker

from hub_ext.images import push as pushing

ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


def make_job_spec(reference: str, prefix: str) -> dict:
    """The one-shot global service's spec (pure): the image's own `true`, as the students' uid, nothing else."""
    name = f"{prefix}-prepull-{hashlib.sha256(reference.encode()).hexdigest()[:12]}"
    return {
        "Name": name,
        "Labels": {"goldenhub.kind": "prepull"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": reference, "Command": ["true"], "User": "1000", "CapabilityDrop": ["ALL"]},
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Resources": {"Limits": {"Pids": 16}},
        },
        "Mode": {"Global": {}},
    }


class SwarmPuller:
    """Looks like an APIClient to push.prepull: pull() yields progress chunks, one per node."""

    def __init__(self, api: docker.APIClient, prefix: str, timeout_s: float = 1800, clock=time.monotonic,
                 sleep=time.sleep):
        self.api, self.prefix, self.timeout_s, self.clock, self.sleep = api, prefix, timeout_s, clock, sleep

    def pull(self, repository: str, tag: str = "", stream: bool = True, decode: bool = True) -> Iterator[dict]:
        reference = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
        spec = make_job_spec(reference, self.prefix)
        try:
            self.api.remove_service(spec["Name"])  # a job left by a crashed publish
        except docker.errors.NotFound:
            pass
        service = self.api.create_service(spec["TaskTemplate"], name=spec["Name"], labels=spec["Labels"],
                                          mode=spec["Mode"])
        try:
            yield from self._follow(service["ID"])
        finally:
            try:
                self.api.remove_service(service["ID"])
            except docker.errors.APIError:
                pass

    def _follow(self, service_id: str) -> Iterator[dict]:
        names = {n["ID"]: (n.get("Description") or {}).get("Hostname") or n["ID"][:12]
                 for n in self.api.nodes() if (n.get("Status") or {}).get("State") == "ready"}
        started, told, failed = self.clock(), set(), {}
        while True:
            tasks = self.api.tasks(filters={"service": service_id})
            for t in tasks:
                node, status = t.get("NodeID", ""), t.get("Status") or {}
                state = status.get("State", "")
                if node in told or state not in ENDED:
                    continue
                told.add(node)
                if state == "complete":
                    yield {"status": f"pulled on node {names.get(node, node[:12])}"}
                else:
                    failed[node] = status.get("Err") or state
            if set(names) <= told:
                break
            if self.clock() - started > self.timeout_s:
                for node in set(names) - told:
                    failed[node] = f"no answer within {int(self.timeout_s)} s"
                break
            self.sleep(2)
        if failed:
            yield {"error": "; ".join(f"node {names.get(n, n[:12])}: {why}" for n, why in sorted(failed.items()))}


def hosts_for(settings, hosts: Callable[[], list]) -> Callable[[], list]:
    """publish's hosts: on the swarm backend (unless a caller chose its own), the whole swarm
    through its manager; else `hosts` unchanged."""
    if getattr(settings, "backend", "docker") != "swarm" or hosts is not pushing.docker_hosts:
        return hosts
    swarm = getattr(settings, "swarm", {}) or {}

    def swarm_hosts() -> list:
        kwargs = docker.utils.kwargs_from_env()
        if swarm.get("docker_host"):
            kwargs["base_url"] = swarm["docker_host"]
        api = docker.APIClient(timeout=600, **kwargs)
        return [("swarm (every node)", SwarmPuller(api, settings.name_prefix))]

    return swarm_hosts
