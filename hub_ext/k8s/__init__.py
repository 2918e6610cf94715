"""goldenhub on Kubernetes through the Zero to JupyterHub chart: the chart's values
(values.py) and the hub-side configuration its hub.extraConfig runs (update_kube)."""
