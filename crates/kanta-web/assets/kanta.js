// kanta's dashboard script: progressive enhancement only; every page works without it.
// Served from the binary as a file of its own, because the pages' Content-Security-Policy
// allows no inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Filters apply as soon as a choice changes.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form && select.form.requestSubmit());
  }
});
