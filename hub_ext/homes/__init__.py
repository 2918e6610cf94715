"""Students' home volumes: what a reset and a restore do, step by step (recipe), the verified
copy into dated backups and back (resets), the crash-safe "being reset" markers the spawner
obeys (markers) and the owner process of a marker or copy (owner)."""
