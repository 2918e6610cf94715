"""The hub-wide GPU state of GoldenSpawner: one allocator per hub process, rebuilt after a
restart from the labels of this hub's running containers (rules: spawner/gpus.py), and the
inventory published for the service (start_events.publish_inventory)."""

from __future__ import annotations

from hub_ext import contract, paths
from spawner import start_events
from spawner.gpus import GPUAllocator, discover_gpus, parse_declared, rebuild_from_containers


class HubGPUs:
    """Mixed into GoldenSpawner (uses its traits: gpu_inventory, name_prefix, client, db...)."""

    @property
    def allocator(self) -> GPUAllocator:
        key = None if self.gpu_inventory is None else tuple(map(str, self.gpu_inventory))
        if key not in self._allocators:
            gpus = discover_gpus() if self.gpu_inventory is None else parse_declared(self.gpu_inventory)
            self.log.info("GPU inventory: %s", ", ".join(g.id for g in gpus) or "none")
            self._allocators[key] = allocator = GPUAllocator(gpus)
            self._publish_inventory([g.id for g in gpus])
            if gpus:
                self._rebuild_allocations(allocator)
        return self._allocators[key]

    def _publish_inventory(self, gpu_ids: list[str]) -> None:
        """For the service's metrics (GPUs free); once per hub process, never fatal."""
        try:
            start_events.publish_inventory(paths.state_dir(), gpu_ids)
        except OSError as e:
            self.log.warning("Could not publish the GPU inventory for the metrics: %s", e)

    def _rebuild_allocations(self, allocator: GPUAllocator) -> None:
        """Once per hub process: take back the GPUs of this hub's running containers from
        their labels, whatever spawner state says (a start in flight when the hub crashed has
        no object_id in state, yet its container may run with a GPU). The hub then adopts
        such a server or stops it, and stopping releases its GPUs. A container of a start
        the hub has no record of is removed (its home volume stays). Rules: gpus.py."""
        try:
            listing = self.client.containers(all=True, filters={"label": contract.label_filter(contract.LABEL_GPUS)})
        except Exception as e:
            self.log.error("Could not list containers to rebuild GPU allocations: %s", e)
            return
        kept, orphans = rebuild_from_containers(
            allocator, listing, lambda user, server: contract.container_name(self.name_prefix, user, server),
            self._hub_has_server, self._shares_gpus)
        for c in kept:
            self.log.info("GPUs %s held by running container %s of %s", list(c.gpu_ids), c.name, c.owner)
        for c in orphans:
            self.log.warning("Removing container %s of a start the hub has no record of "
                             "(GPUs %s freed; its home volume stays)", c.name, list(c.gpu_ids) or "none")
            self.executor.submit(self._remove_quietly, c.id)

    def _hub_has_server(self, user: str, server: str) -> bool | None:
        """Whether the hub's database records a server (running or starting) for this
        user and server name; None where there is no hub database (a spawner outside a hub)."""
        if self.db is None:
            return None
        from jupyterhub import orm

        orm_user = orm.User.find(self.db, user)
        orm_spawner = orm_user.orm_spawners.get(server) if orm_user else None
        return bool(orm_spawner and orm_spawner.server)

    def _shares_gpus(self, template_id: str) -> bool:
        template = self._find_template(template_id)
        return bool(template and template.gpu_sharing)

    def _remove_quietly(self, container_id: str) -> None:
        try:
            self.client.remove_container(container_id, force=True)
        except Exception as e:
            self.log.warning("Could not remove container %s: %s", container_id[:12], e)
