"""Course materials at a burst: the hub's local mirror of each course repository
(rules.py: pure rules; mirror.py: fetching under a lock)."""
