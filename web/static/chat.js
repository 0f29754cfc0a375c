// qa chat: posts questions without reloading and shows sources beside the conversation.
// The page works without this file; everything here is an enhancement.
// Untrusted text (questions, answers, documents) is only ever inserted with textContent.
"use strict";

(function () {
  const form = document.getElementById("ask-form");
  if (!form) return;
  const input = document.getElementById("question");
  const button = document.getElementById("ask-button");
  const thread = document.getElementById("thread");
  const state = document.getElementById("thread-state");
  const errorBox = document.getElementById("ask-error");
  const panel = document.getElementById("source-panel");
  const MAX_TURNS = 20;
  const MAX_MESSAGE = 4000;
  const DOC_ID = /^[0-9a-f]{16}$/;

  let turns = [];
  try {
    turns = JSON.parse(state.value || "[]");
  } catch (e) {
    turns = [];
  }
  let busy = false;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function history() {
    const out = [];
    for (const t of turns) {
      out.push({ role: "user", content: t.question.slice(0, MAX_MESSAGE) });
      out.push({ role: "assistant", content: t.answer.slice(0, MAX_MESSAGE) });
    }
    return out.slice(-MAX_TURNS);
  }

  function where(c) {
    let text = c.path;
    if (c.page !== null && c.page !== undefined) text += " · page " + c.page;
    if (c.section) text += " · " + c.section;
    return text;
  }

  // The same structure as _answer.html, built node by node.
  function answerArticle(turn) {
    const article = el("article", "bubble answer" + (turn.abstained ? " abstained" : ""));
    article.setAttribute("aria-label", turn.abstained ? "No answer in the corpus" : "Answer");
    if (turn.abstained) article.appendChild(el("p", "badge", "Not found in the corpus"));
    if (turn.query !== turn.question) {
      const p = el("p", "searched", "Searched for: ");
      p.appendChild(el("q", null, turn.query));
      article.appendChild(p);
    }
    const byN = new Map(turn.citations.map((c) => [c.n, c]));
    const text = el("p", "text");
    const cited = new Set();
    let pos = 0;
    for (const m of turn.answer.matchAll(/\[(\d{1,3})\]/g)) {
      const c = byN.get(Number(m[1]));
      if (!c) continue;
      if (m.index > pos) text.appendChild(document.createTextNode(turn.answer.slice(pos, m.index)));
      const a = el("a", "cite", m[0]);
      a.href = c.url;
      a.setAttribute("aria-label", "Source " + c.n + ": " + c.title);
      text.appendChild(a);
      cited.add(c.n);
      pos = m.index + m[0].length;
    }
    if (pos < turn.answer.length) text.appendChild(document.createTextNode(turn.answer.slice(pos)));
    article.appendChild(text);
    const shown = turn.abstained ? turn.citations : turn.citations.filter((c) => cited.has(c.n));
    if (shown.length) {
      const details = el("details", "sources");
      details.open = !turn.abstained;
      const label = turn.abstained ? "Closest passages" : "Sources";
      details.appendChild(el("summary", null, label + " (" + shown.length + ")"));
      const ol = el("ol");
      for (const c of shown) {
        const li = el("li");
        li.value = c.n;
        const a = el("a", "source", c.title);
        a.href = c.url;
        li.appendChild(a);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "where", where(c)));
        ol.appendChild(li);
      }
      details.appendChild(ol);
      article.appendChild(details);
    }
    article.appendChild(el("p", "meta", "confidence " + turn.confidence.toFixed(2)));
    return article;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  async function ask(question) {
    busy = true;
    button.disabled = true;
    showError("");
    const intro = document.getElementById("intro");
    if (intro) intro.remove();
    const li = el("li", "turn");
    const q = el("div", "bubble question", question);
    li.appendChild(q);
    const pending = el("article", "bubble answer pending");
    pending.setAttribute("aria-busy", "true");
    pending.appendChild(el("p", "text", "Searching the corpus…"));
    li.appendChild(pending);
    thread.appendChild(li);
    li.scrollIntoView({ block: "end" });
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ question: question, history: history() }),
      });
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
      if (!response.ok || !body || body.error) {
        const message = body && body.error ? body.error.message : "the server answered " + response.status;
        li.remove();
        showError("Could not ask: " + message);
        return;
      }
      turns.push(body);
      turns = turns.slice(-MAX_TURNS);
      state.value = JSON.stringify(turns);
      pending.replaceWith(answerArticle(body));
      input.value = "";
      li.scrollIntoView({ block: "nearest" });
    } catch (e) {
      li.remove();
      showError("Could not reach the server; check that it is running and try again.");
    } finally {
      busy = false;
      button.disabled = false;
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    const question = input.value.trim();
    if (!question) {
      showError("Type a question first.");
      input.focus();
      return;
    }
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // --- the source panel ---------------------------------------------------------------------

  const title = document.getElementById("source-title");
  const whereBox = document.getElementById("source-where");
  const textBox = document.getElementById("source-text");
  const link = document.getElementById("source-link");
  const copy = document.getElementById("source-copy");
  let opener = null;

  function spans(value) {
    const out = [];
    for (const part of (value || "").split(",")) {
      const m = /^(\d+)-(\d+)$/.exec(part.trim());
      if (m) out.push([Number(m[1]), Number(m[2])]);
    }
    return out;
  }

  // Document text cut where the passage and highlights begin and end, like qa/sources.py.
  function fillText(text, passage, marks) {
    textBox.replaceChildren();
    const cuts = new Set([0, text.length]);
    for (const [a, b] of marks.concat(passage ? [passage] : [])) {
      cuts.add(a);
      cuts.add(b);
    }
    const points = Array.from(cuts).filter((c) => c >= 0 && c <= text.length).sort((x, y) => x - y);
    let first = null;
    for (let i = 0; i + 1 < points.length; i++) {
      const a = points[i];
      const b = points[i + 1];
      const piece = text.slice(a, b);
      let node;
      if (marks.some(([s, e]) => s <= a && b <= e)) {
        node = el("mark", null, piece);
        first = first || node;
      } else if (passage && passage[0] <= a && b <= passage[1]) {
        node = el("span", "passage", piece);
      } else {
        node = document.createTextNode(piece);
      }
      textBox.appendChild(node);
    }
    return first || textBox.querySelector(".passage");
  }

  function closePanel() {
    panel.hidden = true;
    document.body.classList.remove("panel-open");
    document.querySelectorAll("a.cite.active").forEach((a) => a.classList.remove("active"));
    if (opener) opener.focus();
    opener = null;
  }

  async function openSource(anchor) {
    const url = new URL(anchor.href, window.location.href);
    const id = url.pathname.split("/").pop();
    if (!DOC_ID.test(id)) {
      window.location.href = url.href;
      return;
    }
    const marks = spans(url.searchParams.get("highlight"));
    const passage = spans(url.searchParams.get("passage"))[0] || null;
    opener = anchor;
    document.querySelectorAll("a.cite.active").forEach((a) => a.classList.remove("active"));
    if (anchor.classList.contains("cite")) anchor.classList.add("active");
    title.textContent = "Loading source…";
    whereBox.textContent = "";
    textBox.replaceChildren();
    link.href = url.href;
    copy.textContent = "Copy link";
    panel.hidden = false;
    document.body.classList.add("panel-open");
    panel.focus();
    const query = marks.map(([a, b]) => a + "-" + b).join(",");
    try {
      const response = await fetch("/api/documents/" + id + (query ? "?highlight=" + query : ""), {
        headers: { accept: "application/json" },
      });
      const doc = await response.json();
      if (!response.ok) throw new Error(doc.error ? doc.error.message : String(response.status));
      title.textContent = doc.title;
      const at = doc.highlight[0] || {};
      whereBox.textContent = where({ path: doc.path, page: at.page, section: at.section });
      const target = fillText(doc.text, passage, marks);
      if (target) target.scrollIntoView({ block: "center" });
    } catch (e) {
      title.textContent = "Source unavailable";
      whereBox.textContent = String(e.message || e);
    }
  }

  document.addEventListener("click", (event) => {
    const anchor = event.target.closest("a.cite, a.source");
    if (!anchor || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    openSource(anchor);
  });

  document.getElementById("source-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) closePanel();
  });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link.href);
      copy.textContent = "Copied";
    } catch (e) {
      copy.textContent = "Select the link to copy it";
    }
  });
})();
