"""The `goldenhub` command: main wires one module per command group (platform, courses,
images, admin)."""
