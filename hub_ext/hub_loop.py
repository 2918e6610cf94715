"""What keeps the hub's event loop free for students: two process-wide settings of the hub.

The hub answers every request on one event loop, so anything that holds the loop makes every
student wait (benchmarks/hub_load.py measures it from a separate process; --gc-log-ms and
--slow-callback-ms show the causes).

- Garbage collection: a full (generation 2) collection walks every object the process
  tracks. After start the hub holds ~330,000 (JupyterHub, SQLAlchemy, Tornado, Docker's
  client, Jinja, the spawners); collecting them held the loop ~190 ms on an idle 2-core
  machine, up to ~750 ms during a class's burst. Nearly all of them live as long as the hub,
  so once the hub has started they are moved into the collector's permanent generation
  (`gc.freeze`, Python's tool for long-lived servers); later collections walk only what was
  made since (~20,000). Reference counting frees objects as ever; only cycles among the
  frozen ones (module-level state) are never collected, which is the point.
- The hub's own SQLite database: JupyterHub commits on the loop (a login, an OAuth code, a
  token, activity), and in SQLite's default rollback journal every commit waits for an
  fsync (0.8 ms idle here, 5 ms while images build on the same disk, per commit, ~5 per
  student opening a notebook). In WAL mode with synchronous=NORMAL a commit is a write to
  the log, synced at checkpoints. Still atomic and consistent, and nothing is lost when the
  hub crashes or is killed; only an operating-system crash or power cut may lose the last
  commits (logins, tokens), which students redo by logging in. Only this one database file:
  the goldenhub service's own database keeps its settings.
"""
from __future__ import annotations

import gc
import logging
from pathlib import Path


def tune_after_start() -> None:
    """Freeze the collector once the JupyterHub app has started; called while its config is read."""
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # not inside a hub (a test reading the config): nothing to do
    app = JupyterHub.instance()
    started = getattr(app, "_start_future", None)
    if started is None:  # a JupyterHub without it: freeze what reading the config has loaded
        freeze(app.log)
        return
    started.add_done_callback(lambda _f: freeze(app.log))


def freeze(log: logging.Logger) -> None:
    gc.collect()  # garbage made while starting is freed first, not kept forever
    gc.freeze()
    log.info("%d objects alive at start moved out of the garbage collector's scans (gc.freeze)",
             gc.get_freeze_count())


def wal_for(db_file: Path):
    """Put `db_file` (and no other SQLite database of the process) in WAL mode with
    synchronous=NORMAL at every new connection. Returns the listener (for event.remove)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(Path(db_file).resolve())

    def on_connect(dbapi_connection, _record):
        if not type(dbapi_connection).__module__.startswith("sqlite3"):
            return
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list") if row[1] == "main"]
        if files and files[0] and str(Path(files[0]).resolve()) == target:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    if not event.contains(Engine, "connect", on_connect):
        event.listen(Engine, "connect", on_connect)
    return on_connect
