"""GPU time: how busy each GPU is (gpu_load), and, as the GPU-time issue lands, accounting,
quotas and GPU-aware culling."""
