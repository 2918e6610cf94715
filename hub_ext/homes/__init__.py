"""Students' home volumes: resets and restores (resets, the whole recipe), the crash-safe
reset markers (markers) and the owner of a running reset (owner)."""
