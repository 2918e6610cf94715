"""How a logo reaches JupyterLab: the stored branding (store), the hub's pages and static
files (handlers), and what goes into a student's container (container)."""
