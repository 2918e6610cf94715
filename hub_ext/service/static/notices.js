// goldenhub: the student's warnings before a stop (idle cull, GPU-hour quota), kept current.
// A page holds <div data-goldenhub-notices data-url="..."> (and data-xsrf="..." where the
// endpoint wants the page's XSRF token): this script asks that URL (a JSON list of
// {kind, server, due_at, due_text, message}) at once and every 30 seconds, and shows one
// warning per item; a warning that is gone from the answer goes from the page. The time in a
// sentence becomes a <time> element that localtime.js shows in the viewer's zone. Text only
// (textContent), never HTML from the answer. A failed request keeps what is shown.
"use strict";
(function () {
  const POLL_MS = 30000;

  function warning(item) {
    const box = document.createElement("div");
    box.className = "alert alert-warning goldenhub-notice";
    box.setAttribute("data-kind", item.kind);
    const message = String(item.message || "");
    const at = item.due_text ? message.indexOf(item.due_text) : -1;
    if (at < 0 || !item.due_at) {
      box.textContent = message;
      return box;
    }
    const time = document.createElement("time");
    time.setAttribute("datetime", item.due_at);
    time.textContent = item.due_text;
    box.append(message.slice(0, at), time, message.slice(at + item.due_text.length));
    return box;
  }

  function show(area, items) {
    const state = JSON.stringify(items);
    if (area.getAttribute("data-state") === state) return; // unchanged: no flicker, no re-announcement
    area.setAttribute("data-state", state);
    area.replaceChildren(...items.map(warning));
    if (window.goldenhubLocalTime) window.goldenhubLocalTime(area);
  }

  async function refresh(area) {
    const headers = {Accept: "application/json"};
    const xsrf = area.getAttribute("data-xsrf");
    if (xsrf) headers["X-XSRFToken"] = xsrf;
    try {
      const answer = await fetch(area.getAttribute("data-url"), {headers, credentials: "same-origin", cache: "no-store"});
      if (!answer.ok) return;
      const items = await answer.json();
      if (Array.isArray(items)) show(area, items);
    } catch (e) {
      // the hub or the network is busy: the next poll tries again
    }
  }

  function start() {
    document.querySelectorAll("[data-goldenhub-notices]").forEach((area) => {
      refresh(area);
      setInterval(() => refresh(area), POLL_MS);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
