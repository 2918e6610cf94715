"""The spawner's pure parts: the start queue when starts are cancelled or time out (a
leaked slot would block every later start), names that never collide (a property test
over every username JupyterHub accepts), which image references may be pulled and how,
the progress a student sees while their server starts, and the sentences a student gets
when their server stopped without them."""

from __future__ import annotations

import asyncio
import hashlib
import re
from types import SimpleNamespace

import escapism
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub_ext import contract
from hub_ext.paths import REPO_ROOT
from spawner.admission import Admission, QueueTimeout
from spawner.exits import explain_exit
from spawner.form import make_options_form
from spawner.images import names_registry, split_reference
from spawner.progress import ProgressLog, pull_percent

# --- the start queue ---------------------------------------------------------------


def queued_spawner(user: str, slots: int, queue_timeout: float = 1800):
    """A real GoldenSpawner outside a hub, as far as the queue needs one."""
    from spawner import GoldenSpawner

    spawner = GoldenSpawner(user=SimpleNamespace(name=user, groups=[]), concurrent_starts=slots,
                            queue_timeout=queue_timeout, courses_dir=str(REPO_ROOT / "courses"))
    spawner._progress = ProgressLog()
    return spawner


async def until(check, what: str, steps: int = 1000):
    """Let the event loop run until `check()` holds (a bound in loop turns, not in time)."""
    for _ in range(steps):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{what} did not happen")


def test_starts_stopped_while_queued_give_their_places_back():
    """Two servers start, two more queue and are stopped while queued: both slots still
    work, and the next student is number 1 in the queue, not number 3."""

    async def scenario():
        ann, bob, cat, dan, eve = (queued_spawner(n, slots=2) for n in ("ann", "bob", "cat", "dan", "eve"))
        admission = ann.admission
        await ann._wait_for_slot()
        await bob._wait_for_slot()
        queued = [asyncio.ensure_future(s._wait_for_slot()) for s in (cat, dan)]
        await until(lambda: admission.waiting == 2, "two starts queued")
        for task in queued:
            task.cancel()  # what the hub does when a pending server is stopped
        for task in queued:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert admission.waiting == 0
        assert admission.position("eve/") is None
        waiting_eve = asyncio.ensure_future(eve._wait_for_slot())
        await until(lambda: admission.waiting == 1, "eve queued")
        assert admission.position("eve/") == 1
        admission.release()  # ann's start is done: eve, not a stopped start, gets the slot
        await asyncio.wait_for(waiting_eve, 10)
        admission.release()  # bob's
        admission.release()  # eve's
        assert admission.active == 0
        await asyncio.wait_for(queued_spawner("fay", slots=2)._wait_for_slot(), 10)  # a free slot at once
        assert admission.active == 1

    asyncio.run(scenario())


def test_a_slot_that_arrives_as_the_start_is_cancelled_is_passed_on():
    async def scenario():
        ann, bob = queued_spawner("ann", slots=1), queued_spawner("bob", slots=1)
        admission = ann.admission
        await ann._wait_for_slot()
        task = asyncio.ensure_future(bob._wait_for_slot())
        await until(lambda: admission.waiting == 1, "bob queued")
        admission.release()  # the slot goes to bob's waiter...
        task.cancel()  # ...as bob's start is cancelled
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (admission.active, admission.waiting) == (0, 0)
        await asyncio.wait_for(queued_spawner("cat", slots=1)._wait_for_slot(), 10)

    asyncio.run(scenario())


def test_a_start_that_waits_too_long_is_told_and_leaves_the_queue():
    from spawner.golden import StartFailed

    async def scenario():
        ann, bob = queued_spawner("ann", slots=1), queued_spawner("bob", slots=1, queue_timeout=0.01)
        admission = ann.admission
        await ann._wait_for_slot()
        with pytest.raises(StartFailed, match="yours waited 0 seconds; please try again"):
            await bob._wait_for_slot()
        assert admission.waiting == 0
        admission.release()
        assert admission.active == 0

    asyncio.run(scenario())


def test_admission_timeout_and_cancel_leave_no_waiter():
    async def scenario():
        admission = Admission(1)
        await admission.acquire("a", 1)
        with pytest.raises(QueueTimeout):
            await admission.acquire("b", 0.01)
        task = asyncio.ensure_future(admission.acquire("c", 60))
        await until(lambda: admission.waiting == 1, "c queued")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert admission.waiting == 0
        admission.release()
        assert admission.active == 0

    asyncio.run(scenario())


# --- names ------------------------------------------------------------------------------

ESCAPED = re.compile(r"(?:[a-z0-9]|-[0-9A-F]{2})*")


def unescape(part: str) -> str:
    return re.sub(rb"-([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), part.encode()).decode()

SHORTENED = re.compile(r"[a-z0-9A-F-]{%d}_[0-9a-f]{%d}" % (contract.MAX_PART - contract.DIGEST - 1, contract.DIGEST))

# Usernames JupyterHub accepts are any non-empty text; these favour the tricky parts:
# escape-like text, separators, non-ASCII, and lengths around the shortening limit.
usernames = st.one_of(
    st.text(min_size=1, max_size=80),
    st.text(alphabet="ab-_09AF@.é", min_size=1, max_size=120),
    st.builds(lambda head, tail: head + tail, st.text(alphabet="x", min_size=30, max_size=60),
              st.text(alphabet="0123456789abcdef-_", max_size=20)),
)


@settings(max_examples=400, deadline=None)
@given(usernames)
def test_escaped_parts_are_escapes_or_marked_shortenings(text):
    part = contract.escape_part(text)
    assert len(part) <= contract.MAX_PART
    assert "--" not in part and not part.endswith("-")  # so '--' separates parts
    if ESCAPED.fullmatch(part):
        assert unescape(part) == text  # unshortened: decodable, so injective
    else:
        assert SHORTENED.fullmatch(part), part  # shortened: carries '_', which no escape has
        assert part.endswith(hashlib.sha256(text.encode()).hexdigest()[:contract.DIGEST])


@settings(max_examples=400, deadline=None)
@given(usernames, st.one_of(st.just(""), usernames), usernames, st.one_of(st.just(""), usernames))
def test_different_users_or_servers_never_share_a_name(user_a, server_a, user_b, server_b):
    if (user_a, server_a) == (user_b, server_b):
        return
    a, b = contract.container_name("gh", user_a, server_a), contract.container_name("gh", user_b, server_b)
    same_hash = (len(contract.escape_part(user_a)) > contract.MAX_PART or len(contract.escape_part(server_a)) > contract.MAX_PART)
    assert a != b or same_hash and contract.escape_part(user_a) == contract.escape_part(user_b)
    assert contract.home_volume_name("gh", user_a, server_a or "c") != contract.home_volume_name(
        "gh", user_b, server_b or "c") or (user_a, server_a or "c") == (user_b, server_b or "c") or same_hash


def old_rule(text: str) -> str:
    """The shortening before this fix: head-<12 hex>, which an escape can equal."""
    escaped = escapism.escape(text, safe=contract.SAFE, escape_char="-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{escaped[:contract.MAX_PART - 13]}-{digest}" if len(escaped) > contract.MAX_PART else escaped


def test_a_crafted_short_name_no_longer_takes_a_long_names_container_and_home():
    # A long username whose hash starts with two decimal digits: '-47…' is also the
    # escape of the byte 0x47, so a second user can craft a name escaping to the same string.
    long_name = next(f"{'x' * 60}{i}" for i in range(1000)
                     if hashlib.sha256(f"{'x' * 60}{i}".encode()).hexdigest()[:2].isdigit())
    digest = hashlib.sha256(long_name.encode()).hexdigest()[:12]
    crafted = "x" * 35 + chr(int(digest[:2], 16)) + digest[2:]
    assert old_rule(crafted) == old_rule(long_name)  # the collision the old rule allowed
    assert contract.container_name("gh", crafted) != contract.container_name("gh", long_name)
    assert contract.home_volume_name("gh", crafted, "c") != contract.home_volume_name("gh", long_name, "c")


def test_control_characters_do_not_make_two_users_one():
    # escapism wrote byte 0x01 as '-1': '\x012' and '\x12' both became '-12'.
    assert escapism.escape("\x012", safe=contract.SAFE, escape_char="-") == escapism.escape(
        "\x12", safe=contract.SAFE, escape_char="-")
    assert contract.container_name("gh", "a\x012") != contract.container_name("gh", "a\x12")


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("image, qualified", [
    ("goldenhub/course-intro-python:latest", False),  # Docker Hub's 'goldenhub' namespace
    ("ubuntu", False),
    ("ubuntu:22.04", False),
    ("library/ubuntu@sha256:" + "0" * 64, False),
    ("registry.example.org/goldenhub/course:1", True),
    ("127.0.0.1:5000/goldenhub/course:1", True),
    ("localhost/goldenhub/course:1", True),
    ("localhost:5000/course", True),
    ("docker.io/library/ubuntu:22.04", True),  # explicit: named on purpose
    ("Registry/course:1", True),  # Docker reads an upper-case first component as a host
])
def test_only_references_that_name_a_registry_may_be_pulled(image, qualified):
    assert names_registry(image) is qualified


@pytest.mark.parametrize("image, pulled", [
    ("goldenhub/course:1", ("goldenhub/course", "1")),
    ("goldenhub/course", ("goldenhub/course", "latest")),  # no tag: Docker's latest
    ("127.0.0.1:5000/goldenhub/course", ("127.0.0.1:5000/goldenhub/course", "latest")),  # a port is no tag
    ("127.0.0.1:5000/goldenhub/course:v2", ("127.0.0.1:5000/goldenhub/course", "v2")),
    ("localhost:5000/course:1.0-rc1", ("localhost:5000/course", "1.0-rc1")),
    ("reg.example.org/a/b@sha256:" + "a" * 64, ("reg.example.org/a/b@sha256:" + "a" * 64, None)),  # pulled whole
    ("reg.example.org/a/b:1@sha256:" + "a" * 64, ("reg.example.org/a/b:1@sha256:" + "a" * 64, None)),
])
def test_a_reference_is_pulled_as_repository_and_tag(image, pulled):
    assert split_reference(image) == pulled


# --- the progress a student sees while their server starts ---------------------------------


def test_a_page_opened_late_gets_every_step_in_order_and_then_the_end():
    async def scenario():
        log = ProgressLog()
        log.emit("Waiting for a start slot", 5)
        log.emit("Pulling the image", 20, pull=True)
        log.emit("Starting Jupyter")
        log.finish()
        return [event async for event in log.stream()]

    assert asyncio.run(scenario()) == [
        {"message": "Waiting for a start slot", "progress": 5},
        {"message": "Pulling the image", "progress": 20, "pull": True},
        {"message": "Starting Jupyter"},  # no percent given: none invented
    ]


def test_an_open_page_gets_each_step_as_it_happens_and_a_reload_gets_them_all():
    """Each event reaches a waiting page within a few loop turns (not at the next 5-second
    poll), and a second page (a reload) still gets the whole story."""
    async def scenario():
        log = ProgressLog()
        seen, again = [], []

        async def watch(into):
            async for event in log.stream():
                into.append(event["message"])

        first = asyncio.ensure_future(watch(seen))
        for step in ("GPU 0 assigned", "Image pulled", "Courseware synced"):
            log.emit(step)
            await until(lambda: seen[-1:] == [step], f"the page showing {step!r}", steps=50)
        second = asyncio.ensure_future(watch(again))
        await until(lambda: len(again) == 3, "the reloaded page catching up", steps=50)
        assert not first.done() and not second.done()  # the start is not over: the pages wait
        log.finish()
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        return seen, again

    seen, again = asyncio.run(scenario())
    assert seen == again == ["GPU 0 assigned", "Image pulled", "Courseware synced"]


@pytest.mark.parametrize("layers, percent", [
    ({}, 0),  # nothing known yet
    ({"a": (0, 0)}, 0),  # sizes not announced yet
    ({"a": (50, 100), "b": (0, 300)}, 12),  # by bytes, not by layers
    ({"a": (100, 100), "b": (300, 300)}, 100),
    ({"a": (150, 100)}, 100),  # Docker over-reporting a layer never passes 100
])
def test_pull_percent_is_by_bytes_of_all_layers(layers, percent):
    assert pull_percent(layers) == percent


# --- what a student is told ------------------------------------------------------------------


def test_a_server_that_died_is_explained_in_one_sentence():
    oom = explain_exit({"OOMKilled": True, "ExitCode": 137}, "Test lab", 512 * 2**20)
    assert oom == ("Your Test lab environment stopped because it ran out of memory (its limit is 512 MiB). "
                   "Your files are kept: start it again, and use less memory.")
    assert "stopped from outside (killed)" in explain_exit({"OOMKilled": False, "ExitCode": 137}, "Lab")
    assert "(exit code 3)" in explain_exit({"ExitCode": 3}, "Lab")
    assert explain_exit({"ExitCode": 0}, "Lab") == ""  # the student shut it down


def test_the_start_page_shows_why_the_last_server_stopped():
    from hub_ext.catalog.model import load_catalog

    templates = list(load_catalog(REPO_ROOT / "courses").templates.values())
    html = make_options_form(templates, notice="Your <b>lab</b> environment stopped")
    assert '<p class="alert alert-warning goldenhub-notice">Your &lt;b&gt;lab&lt;/b&gt; environment stopped</p>' in html
    assert "goldenhub-notice" not in make_options_form(templates)


# --- GPUs after a hub restart -------------------------------------------------------------


def listed(name, user, gpus, state="running", server=""):
    """An entry of Docker's container list, as the API returns it."""
    return {"Id": f"id-{name}", "Names": [f"/{name}"], "State": state,
            "Labels": {"goldenhub.user": user, "goldenhub.server": server, "goldenhub.gpus": gpus,
                       "goldenhub.template": "deep-learning-gpu"}}


def test_gpus_are_taken_back_from_what_runs_and_forgotten_starts_are_removed():
    from spawner.gpus import GPUAllocator, parse_declared, rebuild_from_containers

    gpus = GPUAllocator(parse_declared(["GPU-0", "GPU-1", "GPU-2", "GPU-3"]))
    listing = [
        listed("gh-ann", "ann", "GPU-0"),  # running, its start in flight at the crash
        listed("gh-bob", "bob", "GPU-1"),  # the hub has no record of bob's server
        listed("other-cat", "cat", "GPU-2"),  # another hub's container
        listed("gh-dan", "dan", "GPU-3", state="created"),  # never started: holds no device
    ]
    kept, orphans = rebuild_from_containers(
        gpus, listing, lambda user, server: contract.container_name("gh", user, server),
        lambda user, server: user != "bob", lambda template: False)
    assert [c.name for c in kept] == ["gh-ann"] and [c.id for c in orphans] == ["id-gh-bob"]
    assert gpus.usage() == {"GPU-0": ["ann/"], "GPU-1": [], "GPU-2": [], "GPU-3": []}
    assert gpus.allocate("eve/", 1) == ["GPU-1"]  # never ann's GPU-0
