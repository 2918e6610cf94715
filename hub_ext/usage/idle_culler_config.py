"""The configuration file jupyterhub-idle-culler loads (--config, set by culling_config):
per-template timeouts through the culler's own hook (hub_ext.usage.cull_hook). The culler's
process gets the goldenhub service's environment, so Settings.from_env sees the same
settings as the hub."""

from hub_ext.hubconfig import Settings
from hub_ext.usage.cull_hook import make_arbiter

c = get_config()  # noqa: F821 (traitlets' config loader provides it)
c.IdleCuller.cull_arbiter_hook = make_arbiter(Settings.from_env())
