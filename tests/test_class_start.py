"""Class start: 30 students press Start within a second on this 2-core machine and every
one of them gets a server; those who wait see their place in the queue."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.integration

STUDENTS = 30


def test_thirty_students_at_once_all_get_a_server(hub):
    users = [f"class-{i:02d}" for i in range(STUDENTS)]
    r = hub.request("POST", "/users", json={"usernames": users})
    assert r.status_code in (201, 409), r.text
    with ThreadPoolExecutor(STUDENTS) as pool:
        responses = list(pool.map(lambda u: hub.start(u, {"template": "lab-cpu"}), users))
        assert all(r.status_code in (201, 202) for r in responses), [r.text for r in responses if r.status_code >= 300]
        try:
            queued = hub.progress_events(users[-1])
            messages = [e["message"] for e in queued]
            assert any("in the queue" in m for m in messages), messages
            assert queued[-1].get("ready"), messages

            def all_ready():
                listing = hub.request("GET", "/users", params={"state": "ready"}).json()
                return len([u for u in listing if u["name"] in users]) == STUDENTS

            wait_for(all_ready, 600, "all 30 servers ready", interval=2)
            failed = [u for u in users if not (hub.server(u) or {}).get("ready")]
            assert failed == []
        finally:
            list(pool.map(hub.stop, users))
