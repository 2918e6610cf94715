"""Where goldenhub finds its files: the checkout it runs from and its state directory."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def courses_dir() -> Path:
    """The directory of course YAML files (GOLDENHUB_COURSES_DIR, else courses/ in the checkout)."""
    return Path(os.environ.get("GOLDENHUB_COURSES_DIR") or REPO_ROOT / "courses")


def images_dir() -> Path:
    """The directory of image layers (GOLDENHUB_IMAGES_DIR, else images/ in the checkout)."""
    return Path(os.environ.get("GOLDENHUB_IMAGES_DIR") or REPO_ROOT / "images")


def state_dir() -> Path:
    """Where generated secrets, the hub database and git repos live (GOLDENHUB_STATE_DIR, else state/)."""
    return Path(os.environ.get("GOLDENHUB_STATE_DIR") or REPO_ROOT / "state")
