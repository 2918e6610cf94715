"""goldenhub's spawner: course templates become Docker containers (runs inside the hub)."""

from spawner.golden import GoldenSpawner

__all__ = ["GoldenSpawner"]
