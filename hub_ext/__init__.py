"""goldenhub outside the spawner, one subpackage per feature: catalog, homes, branding,
images, service, cli; contract.py holds every name the hub, the service and the CLI share."""
