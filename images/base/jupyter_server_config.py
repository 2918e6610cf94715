"""The sys-prefix Python config, loaded just before jupyter_server_config.json beside it (the
JSON holds every static setting; this file holds only what is computed from the environment).

jupyter-resource-usage compares ResourceUseDisplay.cpu_limit with its cpu_percent (100 = one
CPU busy) to warn the student, but takes its default from CPU_LIMIT, which JupyterHub and the
spawner give in CPUs: a 2-CPU template would flash its warning at 1.8 % of one CPU. The limit is
given here in the unit of the reading: the template's CPUs times 100 (0: no limit shown)."""

import os

try:
    _cpus = float(os.environ.get("CPU_LIMIT") or 0)
except ValueError:
    _cpus = 0.0
c.ResourceUseDisplay.cpu_limit = max(_cpus, 0.0) * 100  # noqa: F821 (c is the config traitlets loads)
