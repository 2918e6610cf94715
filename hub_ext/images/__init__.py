"""Golden images: the layer plan (plan), running it with Docker (build), and the offline
base image (offline_base)."""
