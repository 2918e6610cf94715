"""The goldenhub service: runs under /services/goldenhub/ as a JupyterHub-managed service,
with its own database, REST API and pages for students and admins."""
