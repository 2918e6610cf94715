// goldenhub: destructive forms ask first, in the page.
// A form with a data-confirm attribute (rendered, autoescaped, by the service's templates:
// what will happen, to whom, how to undo it) opens a <dialog> with that sentence when it is
// submitted. Cancel (or Escape) sends nothing; Confirm submits the form as the user sent it
// (same button, same fields). The sentence is set as text, never as HTML. Without this
// script the forms work as before, with their server-side confirmations.
"use strict";
(function () {
  let dialog = null;
  let pending = null; // {form, submitter} waiting for an answer

  function build() {
    dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-text");
    const text = document.createElement("p");
    text.id = "confirm-text";
    const buttons = document.createElement("p");
    const yes = document.createElement("button");
    yes.type = "button";
    yes.id = "confirm-yes";
    yes.className = "btn btn-danger danger";
    const no = document.createElement("button");
    no.type = "button";
    no.id = "confirm-no";
    // the page's own word (gh_page.html renders it translated): this script has no catalog
    const main = document.getElementById("goldenhub-main");
    no.textContent = (main && main.dataset.wordCancel) || "Cancel";
    no.className = "btn btn-outline-secondary";
    buttons.append(yes, " ", no);
    dialog.append(text, buttons);
    document.body.append(dialog);
    no.addEventListener("click", () => dialog.close("cancel"));
    yes.addEventListener("click", () => dialog.close("confirm"));
    dialog.addEventListener("close", () => {
      const chosen = pending;
      pending = null;
      if (chosen && dialog.returnValue === "confirm") {
        chosen.form.dataset.confirmed = "yes";
        if (chosen.submitter) {
          chosen.form.requestSubmit(chosen.submitter);
        } else {
          chosen.form.requestSubmit();
        }
      }
    });
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (form.dataset.confirmed === "yes") {
      delete form.dataset.confirmed; // asked once for this submission
      return;
    }
    event.preventDefault();
    if (!dialog) build();
    pending = { form: form, submitter: event.submitter || null };
    dialog.returnValue = "";
    dialog.querySelector("#confirm-text").textContent = form.dataset.confirm;
    dialog.querySelector("#confirm-yes").textContent = form.dataset.confirmButton || "Yes, go ahead";
    dialog.showModal();
    dialog.querySelector("#confirm-no").focus(); // the safe choice has the focus
  });
})();
