"""The hub's event loop kept free (hub_ext/hub_loop.py): its own SQLite database commits to a
write-ahead log without waiting for an fsync, and the objects alive at its start are out of
the garbage collector's full scans. Latency itself is measured in benchmarks/hub_load.py."""
import sqlite3

import pytest

from hub_ext import hub_loop


def test_only_the_named_database_goes_to_wal(tmp_path):
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.engine import Engine

    listener = hub_loop.wal_for(tmp_path / "jupyterhub.sqlite")
    try:
        modes = {}
        for name in ("jupyterhub.sqlite", "goldenhub.sqlite", "other-jupyterhub.sqlite"):
            engine = create_engine(f"sqlite:///{tmp_path / name}")
            with engine.connect() as conn:
                modes[name] = (conn.execute(text("PRAGMA journal_mode")).scalar(),
                               conn.execute(text("PRAGMA synchronous")).scalar())
            engine.dispose()
    finally:
        event.remove(Engine, "connect", listener)
    # synchronous: 1 = NORMAL, 2 = FULL (SQLite's default)
    assert modes == {"jupyterhub.sqlite": ("wal", 1), "goldenhub.sqlite": ("delete", 2),
                     "other-jupyterhub.sqlite": ("delete", 2)}


def test_outside_a_hub_nothing_is_frozen():
    import gc

    before = gc.get_freeze_count()
    hub_loop.tune_after_start()  # no JupyterHub app in this process
    assert gc.get_freeze_count() == before


@pytest.mark.integration
def test_the_running_hub_uses_both(hub):
    db = hub.state_dir / "jupyterhub.sqlite"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert "moved out of the garbage collector's scans (gc.freeze)" in hub.log_path.read_text(errors="replace")
