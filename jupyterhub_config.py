# goldenhub's JupyterHub configuration. Works with no edits: `jupyterhub -f jupyterhub_config.py`.
# Settings come from GOLDENHUB_* environment variables (see README); site-specific Python
# config can be added without editing this file through GOLDENHUB_EXTRA_CONFIG=/path/to/file.py.
import os

from hub_ext.hubconfig import Settings, apply_all, ensure_state

settings = Settings.from_env()
ensure_state(settings)  # private state directory, generated secrets: the one step with effects
apply_all(c, settings)  # noqa: F821 (c is provided by JupyterHub)

if os.environ.get("GOLDENHUB_EXTRA_CONFIG"):
    load_subconfig(os.environ["GOLDENHUB_EXTRA_CONFIG"])  # noqa: F821
