// goldenhub: a running publish's log fills in while it runs (the Images page of a course).
// The page renders the run (#run: its API url, state and the byte offset the shown log ends
// at) and the log so far. While the state is "running" this asks api/publish/<run>?offset=N
// every second and appends what is new, as text (never HTML). When the run ends the page is
// loaded again (as a GET of the run: never a form sent twice), so it shows the new pin, the versions and the whole log from the server.
// A failed request is tried again on the next tick; nothing else changes the page.
"use strict";
(function () {
  const run = document.getElementById("run");
  if (!run || run.dataset.state !== "running") return;
  const log = document.getElementById("publish-log");
  const state = document.getElementById("run-state");
  const step = document.getElementById("run-step");
  let offset = Number(run.dataset.offset) || 0;
  log.scrollTop = log.scrollHeight; // a running log is followed from its newest line
  let busy = false;

  async function tick() {
    if (busy) return;
    busy = true;
    try {
      // the page's XSRF token: the hub's login cookie alone is refused outside a navigation
      const answer = await fetch(run.dataset.url + "?offset=" + offset, {
        headers: { "X-XSRFToken": run.dataset.xsrf }, credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) return;
      const data = await answer.json();
      if (data.log) {
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(document.createTextNode(data.log));
        if (atEnd) log.scrollTop = log.scrollHeight;
      }
      offset = data.next_offset;
      // the step's words as the page wrote them (data-step-<id>); this script has no catalog
      if (data.step) step.textContent = run.getAttribute("data-step-" + data.step) || data.step;
      if (data.state !== "running" && data.log === "") {
        // the whole log is here: show the finished run as the server renders it
        state.dataset.state = data.state;
        state.textContent = run.dataset["word" + data.state.charAt(0).toUpperCase() + data.state.slice(1)] || data.state;
        clearInterval(timer);
        window.location.assign(run.dataset.page);
      }
    } catch (e) {
      // the hub or the network hiccuped: the next tick asks again
    } finally {
      busy = false;
    }
  }

  const timer = setInterval(tick, 1000);
})();
