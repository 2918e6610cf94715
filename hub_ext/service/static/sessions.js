// goldenhub: the class sessions form sends the time as the browser's local time. This fills
// the hidden tz_offset field (minutes east of UTC, for the chosen date) so the service stores
// UTC. Without this script the field stays 0 and the time is read as UTC (the page says so).
"use strict";
(function () {
  function fill(form) {
    const at = form.querySelector("input[name=at_local]");
    const offset = form.querySelector("input[name=tz_offset]");
    if (!at || !offset) return;
    const when = at.value ? new Date(at.value) : new Date();
    offset.value = String(-when.getTimezoneOffset());
  }
  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("session-form");
    if (!form) return;
    const zone = document.getElementById("session-zone");
    if (zone && window.Intl) zone.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || zone.textContent;
    fill(form);
    form.addEventListener("input", function () { fill(form); });
    form.addEventListener("submit", function () { fill(form); });
  });
})();
