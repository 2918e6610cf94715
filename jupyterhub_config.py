# goldenhub's JupyterHub configuration. Works with no edits: `jupyterhub -f jupyterhub_config.py`.
# Settings come from GOLDENHUB_* environment variables (see README); site-specific Python
# config can be added without editing this file through GOLDENHUB_EXTRA_CONFIG=/path/to/file.py.
import os

from hub_ext import hub_loop
from hub_ext.hubconfig import Settings, apply_all, check_spawner_config, ensure_network, ensure_state

settings = Settings.from_env()
# The setup steps with effects, each idempotent; what they find goes into settings.
ensure_state(settings)  # private state directory, generated secrets, the database URL's file
ensure_network(settings)  # the students' Docker network; the hub listens on its gateway
apply_all(c, settings)  # noqa: F821 (c is provided by JupyterHub): only writes configuration

if os.environ.get("GOLDENHUB_EXTRA_CONFIG"):
    load_subconfig(os.environ["GOLDENHUB_EXTRA_CONFIG"])  # noqa: F821

check_spawner_config(c)  # noqa: F821: settings GoldenSpawner would ignore stop the start, with a reason
# What keeps the hub's event loop free (hub_ext/hub_loop.py): its SQLite database in WAL mode,
# and the objects alive at start out of the garbage collector's full scans.
hub_loop.wal_for(settings.state_dir / "jupyterhub.sqlite")
hub_loop.tune_after_start()
