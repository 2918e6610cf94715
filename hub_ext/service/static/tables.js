// goldenhub: long tables get a filter box and pages.
// Any <table data-table> (its rows in <tbody>) gets, above it, a filter box that shows only the
// rows containing the typed text (case-insensitive), and below it "Rows 1–25 of 340" with
// Previous/Next buttons, data-page-size rows a page (25 if absent). The words come from the
// table's data-word-* attributes, rendered translated by the template (table_words.html):
// this script has no catalog. Without the script every row shows.
"use strict";
(function () {
  function setUp(table, index) {
    const body = table.tBodies[0];
    if (!body || table.hasAttribute("data-table-ready")) return;
    table.setAttribute("data-table-ready", "");
    const words = table.dataset;
    const size = Math.max(1, parseInt(words.pageSize || "25", 10) || 25);
    const rows = Array.from(body.rows);
    const id = table.id || "goldenhub-table-" + index;
    table.id = id;
    let page = 0;

    const filterBox = document.createElement("div");
    filterBox.className = "goldenhub-table-filter mb-2";
    const input = document.createElement("input");
    input.type = "search";
    input.className = "form-control form-control-sm w-auto d-inline-block";
    input.id = id + "-filter";
    input.placeholder = words.wordFilter || "Filter";
    input.setAttribute("aria-label", words.wordFilter || "Filter");
    input.title = words.wordFilterHint || "";
    input.setAttribute("aria-controls", id);
    filterBox.append(input);

    const pager = document.createElement("div");
    pager.className = "goldenhub-table-pager d-flex align-items-center gap-2 mb-3";
    const previous = document.createElement("button");
    previous.type = "button";
    previous.className = "btn btn-sm btn-outline-secondary goldenhub-previous";
    previous.textContent = words.wordPrevious || "Previous";
    const status = document.createElement("span");
    status.className = "goldenhub-table-status";
    status.setAttribute("role", "status");
    const next = document.createElement("button");
    next.type = "button";
    next.className = "btn btn-sm btn-outline-secondary goldenhub-next";
    next.textContent = words.wordNext || "Next";
    pager.append(previous, status, next);

    table.before(filterBox);
    table.after(pager);

    function matching() {
      const needle = input.value.trim().toLowerCase();
      return needle ? rows.filter((r) => r.textContent.toLowerCase().includes(needle)) : rows;
    }

    function show() {
      const shown = matching();
      const pages = Math.max(1, Math.ceil(shown.length / size));
      page = Math.min(Math.max(page, 0), pages - 1);
      const first = page * size;
      const visible = new Set(shown.slice(first, first + size));
      rows.forEach((r) => { r.hidden = !visible.has(r); });
      if (shown.length === 0) {
        status.textContent = words.wordNone || "No row contains this.";
      } else {
        status.textContent = (words.wordRows || "Rows {first}–{last} of {total}")
          .replace("{first}", String(first + 1))
          .replace("{last}", String(Math.min(first + size, shown.length)))
          .replace("{total}", String(shown.length));
      }
      previous.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }

    input.addEventListener("input", () => { page = 0; show(); });
    previous.addEventListener("click", () => { page -= 1; show(); });
    next.addEventListener("click", () => { page += 1; show(); });
    show();
  }

  function setUpAll() {
    document.querySelectorAll("table[data-table]").forEach(setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpAll);
  } else {
    setUpAll();
  }
})();
