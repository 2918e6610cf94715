"""The student network: a bridge where containers cannot reach each other, only the host."""

from __future__ import annotations

import docker

from hub_ext.contract import LABEL_NETWORK

# Inter-container traffic off: student A cannot reach student B's server. The host
# (hub API, courseware git server) stays reachable at the network's gateway.
NETWORK_OPTIONS = {"com.docker.network.bridge.enable_icc": "false"}


def ensure_network(client: docker.DockerClient, name: str) -> str:
    """Create the network if missing; return its gateway address (the host, as seen from it)."""
    found = client.networks.list(names=[name])
    network = next((n for n in found if n.name == name), None)
    if network is None:
        network = client.networks.create(
            name, driver="bridge", options=NETWORK_OPTIONS, labels={LABEL_NETWORK: "students"}
        )
        network.reload()
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
    if not gateway:
        raise RuntimeError(f"Docker network {name!r} has no IPv4 gateway; remove it and let goldenhub recreate it")
    return gateway
