// kanta's dashboard script: progressive enhancement only; every page works without it.
// Served from the binary as a file of its own, because the pages' Content-Security-Policy
// allows no inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Filters apply as soon as a choice changes.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form && select.form.requestSubmit());
  }
  for (const form of document.querySelectorAll("form[data-preview]")) {
    livePreview(form);
  }
});

// The segment editor: the member count follows the expression as it is typed. The form is
// posted to its preview address (the same one its "Count" button uses), asking for JSON.
function livePreview(form) {
  const expression = form.querySelector("textarea[name=expression]");
  const count = form.querySelector("#count");
  const problem = form.querySelector("#problem");
  let timer = 0;
  let asked = 0;
  const ask = async () => {
    const mine = ++asked;
    const body = new URLSearchParams(new FormData(form));
    let answer;
    try {
      const response = await fetch(form.dataset.preview, {
        method: "POST",
        headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body,
        credentials: "same-origin",
      });
      if (!response.ok) {
        throw new Error(`the server answered ${response.status}`);
      }
      answer = await response.json();
    } catch (e) {
      answer = { count: null, text: "", problem: { message: `The count could not be made: ${e.message}` } };
    }
    if (mine !== asked) {
      return; // a later keystroke's answer is on its way
    }
    count.textContent = answer.text || "";
    count.dataset.count = answer.count === null || answer.count === undefined ? "" : String(answer.count);
    problem.replaceChildren();
    if (answer.problem) {
      const p = answer.problem;
      const line = document.createElement("p");
      line.textContent = (p.line ? `Line ${p.line}, column ${p.column}: ` : "") + p.message;
      problem.append(line);
      if (p.excerpt !== null && p.excerpt !== undefined) {
        const pre = document.createElement("pre");
        pre.className = "pointer";
        pre.textContent = `${p.excerpt}\n${p.pointer}`;
        problem.append(pre);
      }
    }
  };
  expression.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 250);
  });
  if (expression.value.trim() !== "") {
    ask();
  }
}
