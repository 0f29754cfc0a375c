// qa chat: asks without reloading, keeps the conversation on the server under its own URL,
// previews and opens sources, and sends feedback. The page works without this file.
// Untrusted text (questions, answers, documents) is only ever inserted with textContent.
"use strict";

(function () {
  const form = document.getElementById("ask-form");
  if (!form) return;
  const input = document.getElementById("question");
  const button = document.getElementById("ask-button");
  const thread = document.getElementById("thread");
  const idField = document.getElementById("conversation-id");
  const errorBox = document.getElementById("ask-error");
  const announce = document.getElementById("announce");
  const panel = document.getElementById("source-panel");
  const intro = document.getElementById("intro");
  const DOC_ID = /^[0-9a-f]{16}$/;
  const CONVERSATION_ID = /^[A-Za-z0-9_-]{22}$/;
  // The unsent question lives in this tab's session storage, so a reload keeps it; the
  // conversation itself lives on the server.
  const DRAFT_KEY = "qa.draft.v2";

  let busy = false;
  let owned = !document.getElementById("shared-note");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function conversationId() {
    return CONVERSATION_ID.test(idField.value) ? idField.value : "";
  }

  // --- the draft ----------------------------------------------------------------------------

  function saveDraft() {
    try {
      if (input.value) window.sessionStorage.setItem(DRAFT_KEY, input.value);
      else window.sessionStorage.removeItem(DRAFT_KEY);
    } catch (e) {
      // storage full or disabled: the page still works, it just forgets the draft
    }
  }

  function loadDraft() {
    try {
      return window.sessionStorage.getItem(DRAFT_KEY);
    } catch (e) {
      return null;
    }
  }

  // --- checking what the server sent ---------------------------------------------------------

  const isInt = (v) => Number.isInteger(v);
  const isStr = (v) => typeof v === "string";

  function validCitation(c) {
    return !!c && typeof c === "object" && isInt(c.n) && isStr(c.document_id) && isStr(c.title) &&
      isStr(c.path) && isStr(c.url) && isStr(c.text) && isInt(c.start) && isInt(c.end) &&
      Array.isArray(c.highlight);
  }

  function validSpan(s) {
    return s === null || s === undefined || (typeof s === "object" && isStr(s.text) && isInt(s.n) &&
      isStr(s.document_id) && isInt(s.start) && isInt(s.end));
  }

  function validTurn(t) {
    return !!t && typeof t === "object" && isStr(t.question) && isStr(t.query) && isInt(t.n) &&
      isStr(t.answer) && typeof t.confidence === "number" && typeof t.abstained === "boolean" &&
      Array.isArray(t.citations) && t.citations.every(validCitation) && validSpan(t.answer_span) &&
      (t.reason === undefined || isStr(t.reason));
  }

  function place(c) {
    let text = c.path;
    if (c.page !== null && c.page !== undefined) text += " · page " + c.page;
    if (c.section) text += " · " + c.section;
    return text;
  }

  // Only links into this site: a forged turn cannot smuggle in another scheme.
  function safeHref(url) {
    return /^\/(?![/\\])/.test(url) ? url : "#";
  }

  // The sentences a citation's preview shows, as qa/server/pages.py cited_text does.
  function citedText(c) {
    const parts = [];
    for (const [a, b] of c.highlight) {
      if (c.start <= a && a < b && b <= c.end) {
        const piece = c.text.slice(a - c.start, b - c.start).trim();
        if (piece) parts.push(piece);
      }
    }
    const text = parts.join(" … ") || c.text.trim();
    return text.length <= 400 ? text : text.slice(0, 399).trimEnd() + "…";
  }

  // --- the short answer, as qa/server/pages.py finds it ---------------------------------------

  function shortAnswer(turn) {
    const span = turn.answer_span;
    return span && !turn.abstained && span.text.trim() ? span : null;
  }

  function citeUrl(turn, c) {
    const span = shortAnswer(turn);
    const url = safeHref(c.url);
    if (!span || span.n !== c.n || span.document_id !== c.document_id || url === "#" ||
        !(span.start >= 0 && span.start < span.end)) {
      return url;
    }
    const hash = url.indexOf("#");
    const base = hash < 0 ? url : url.slice(0, hash);
    const fragment = hash < 0 ? "" : url.slice(hash);
    return base + (base.includes("?") ? "&" : "?") + "span=" + span.start + "-" + span.end + fragment;
  }

  function parts(turn, byN) {
    const out = [];
    let pos = 0;
    for (const m of turn.answer.matchAll(/\[(\d{1,3})\]/g)) {
      const n = Number(m[1]);
      if (!byN.has(n)) continue;
      if (m.index > pos) out.push({ text: turn.answer.slice(pos, m.index), n: null });
      out.push({ text: m[0], n: n });
      pos = m.index + m[0].length;
    }
    if (pos < turn.answer.length) out.push({ text: turn.answer.slice(pos), n: null });
    return out;
  }

  function spanIn(list, turn, byN) {
    const span = shortAnswer(turn);
    if (!span) return null;
    const runs = [];
    list.forEach((p, i) => {
      if (p.n !== span.n) return;
      let j = i - 1;
      while (j >= 0 && list[j].n !== null) j--;
      if (j >= 0 && !runs.includes(j)) runs.push(j);
    });
    const size = span.text.length;
    const c = byN.get(span.n);
    if (c && c.document_id === span.document_id) {
      for (const [a, b] of c.highlight) {
        if (!(c.start <= a && a <= span.start && span.end <= b && b <= c.end)) continue;
        const sentence = c.text.slice(a - c.start, b - c.start);
        for (const i of runs) {
          const run = list[i].text.trimEnd();
          if (sentence && run.endsWith(sentence)) {
            const at = run.length - sentence.length + span.start - a;
            if (list[i].text.slice(at, at + size) === span.text) return [i, at, at + size];
          }
        }
      }
    }
    for (const i of runs) {
      const at = list[i].text.indexOf(span.text);
      if (at >= 0) return [i, at, at + size];
    }
    return null;
  }

  // --- drawing a turn, as _answer.html does -------------------------------------------------

  function citeMarker(turn, c, text, index) {
    const wrap = el("span", "cite-wrap");
    const a = el("a", "cite", text);
    a.href = citeUrl(turn, c);
    a.setAttribute("aria-label", "Source " + c.n + ": " + c.title);
    const id = "pv-" + turn.n + "-" + index;
    a.setAttribute("aria-describedby", id);
    const preview = el("span", "preview");
    preview.id = id;
    preview.setAttribute("role", "tooltip");
    preview.appendChild(el("span", "preview-title", c.title));
    preview.appendChild(document.createTextNode(" "));
    preview.appendChild(el("span", "preview-where", place(c)));
    preview.appendChild(document.createTextNode(" "));
    preview.appendChild(el("span", "preview-text", citedText(c)));
    wrap.appendChild(a);
    wrap.appendChild(preview);
    return wrap;
  }

  function feedbackForm(turn) {
    const f = el("form", "feedback");
    f.method = "post";
    f.action = "/c/" + conversationId() + "/feedback";
    f.setAttribute("aria-label", "Feedback on this answer");
    const n = el("input");
    n.type = "hidden";
    n.name = "n";
    n.value = String(turn.n);
    f.appendChild(n);
    f.appendChild(el("span", "feedback-ask", "Was this right?"));
    for (const [value, label, text] of [["up", "Yes, a good answer", "Yes"],
                                        ["down", "No, a bad answer", "No"]]) {
      const b = el("button", "rate " + value, text);
      b.type = "submit";
      b.name = "rating";
      b.value = value;
      b.setAttribute("aria-label", label);
      b.setAttribute("aria-pressed", turn.rating === value ? "true" : "false");
      f.appendChild(document.createTextNode(" "));
      f.appendChild(b);
    }
    const details = el("details", "comment");
    details.appendChild(el("summary", null, "Add a comment"));
    const label = el("label", null, "Comment, sent with Yes or No");
    label.htmlFor = "comment-" + turn.n;
    const area = el("textarea");
    area.id = "comment-" + turn.n;
    area.name = "comment";
    area.rows = 2;
    area.maxLength = 2000;
    details.appendChild(label);
    details.appendChild(area);
    f.appendChild(details);
    const status = el("span", "feedback-status");
    status.setAttribute("role", "status");
    f.appendChild(status);
    return f;
  }

  function answerArticle(turn) {
    const article = el("article", "bubble answer" + (turn.abstained ? " abstained" : ""));
    article.setAttribute("aria-label", turn.abstained ? "No answer in the corpus" : "Answer");
    if (turn.abstained) {
      article.appendChild(el("p", "badge", "Not found in the corpus"));
      if (turn.reason) article.appendChild(el("p", "reason", turn.reason));
    }
    const short = shortAnswer(turn);
    if (short) {
      const p = el("p", "short-answer");
      p.appendChild(el("span", "sr-only", "Short answer: "));
      p.appendChild(el("strong", null, short.text));
      article.appendChild(p);
    }
    if (turn.query !== turn.question) {
      const p = el("p", "searched", "Searched for: ");
      p.appendChild(el("q", null, turn.query));
      article.appendChild(p);
    }
    const byN = new Map(turn.citations.map((c) => [c.n, c]));
    const text = el("p", "text");
    const cited = new Set();
    const list = parts(turn, byN);
    const at = spanIn(list, turn, byN);
    list.forEach((p, i) => {
      if (p.n !== null) {
        text.appendChild(citeMarker(turn, byN.get(p.n), p.text, i + 1));
        cited.add(p.n);
      } else if (at && at[0] === i) {
        const before = p.text.slice(0, at[1]);
        const after = p.text.slice(at[2]);
        if (before) text.appendChild(document.createTextNode(before));
        text.appendChild(el("mark", "span", p.text.slice(at[1], at[2])));
        if (after) text.appendChild(document.createTextNode(after));
      } else {
        text.appendChild(document.createTextNode(p.text));
      }
    });
    article.appendChild(text);
    const shown = turn.abstained ? turn.citations : turn.citations.filter((c) => cited.has(c.n));
    if (shown.length) {
      const details = el("details", "sources");
      details.open = true;
      const label = turn.abstained ? "Closest passages" : "Sources";
      details.appendChild(el("summary", null, label + " (" + shown.length + ")"));
      const ol = el("ol");
      for (const c of shown) {
        const li = el("li");
        li.value = c.n;
        const a = el("a", "source", c.title);
        a.href = citeUrl(turn, c);
        li.appendChild(a);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "where", place(c)));
        if (turn.abstained && c.highlight.length) {
          li.appendChild(document.createTextNode(" "));
          li.appendChild(el("q", "near", citedText(c)));
        }
        ol.appendChild(li);
      }
      details.appendChild(ol);
      article.appendChild(details);
    }
    article.appendChild(el("p", "meta", "confidence " + turn.confidence.toFixed(2)));
    if (owned && conversationId()) article.appendChild(feedbackForm(turn));
    return article;
  }

  function turnItem(turn) {
    const li = el("li", "turn");
    li.id = "turn-" + turn.n;
    const q = el("div", "bubble question");
    q.appendChild(el("span", "sr-only", "You asked: "));
    q.appendChild(document.createTextNode(turn.question));
    li.appendChild(q);
    li.appendChild(answerArticle(turn));
    return li;
  }

  function showEmpty() {
    if (intro) intro.hidden = !!thread.querySelector("li.turn");
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function say(turn) {
    // The live region reads the answer once; the thread itself is not live (it would be read
    // again whole on every change).
    let text;
    if (turn.abstained) text = "Not found in the corpus. " + (turn.reason || "");
    else {
      const short = shortAnswer(turn);
      text = "Answer: " + (short ? short.text + ". " : "") + turn.answer.replace(/\s*\[\d{1,3}\]/g, "");
    }
    announce.textContent = text.slice(0, 600);
  }

  // --- the conversation's place: its URL, its title, the sidebar -----------------------------

  function adopt(body) {
    const was = conversationId();
    idField.value = body.conversation_id;
    if (was === body.conversation_id) return;
    owned = true;
    try {
      window.history.replaceState(null, "", body.url);
    } catch (e) {
      // not fatal: the sidebar links to it all the same
    }
    document.title = body.title + " · qa";
    const shared = document.getElementById("shared-note");
    if (shared) shared.remove();
    let head = document.getElementById("conversation-head");
    if (!head) {
      head = el("header", "conversation-head");
      head.id = "conversation-head";
      const h1 = el("h1", null, body.title);
      h1.id = "conversation-title";
      head.appendChild(h1);
      intro.before(head);
      const introTitle = intro.querySelector("h1");
      if (introTitle) introTitle.remove();
    }
    let actions = head.querySelector(".conversation-actions");
    if (!actions) {
      actions = el("div", "conversation-actions");
      head.appendChild(actions);
    }
    actions.replaceChildren();
    const exportLink = el("a", null, "Export as Markdown");
    exportLink.id = "export-link";
    exportLink.href = body.url + "/export";
    actions.appendChild(exportLink);
    actions.appendChild(document.createTextNode(" "));
    const del = el("form", "inline");
    del.id = "delete-form";
    del.method = "post";
    del.action = body.url + "/delete";
    const delButton = el("button", "link-button", "Delete conversation");
    delButton.type = "submit";
    delButton.id = "delete-conversation";
    del.appendChild(delButton);
    actions.appendChild(del);
    // The sidebar: the new conversation first, and marked as the one shown.
    const list = document.getElementById("conversation-list");
    list.querySelectorAll("[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
    const li = el("li");
    const a = el("a", null, body.title);
    a.href = body.url;
    a.setAttribute("aria-current", "page");
    li.appendChild(a);
    list.prepend(li);
    const none = document.getElementById("no-conversations");
    if (none) none.hidden = true;
    // A copy starts afresh: the shown turns are its own now, with feedback forms.
    if (body.forked) {
      thread.querySelectorAll("article.answer").forEach((art) => {
        const item = art.closest("li.turn");
        const n = Number((item.id || "").replace("turn-", ""));
        if (!art.querySelector("form.feedback") && Number.isInteger(n)) {
          art.appendChild(feedbackForm({ n: n, rating: null }));
        }
      });
    }
  }

  // The collection picker (present when the server serves several): its choice goes along.
  function withCollection(body) {
    const picker = document.getElementById("collection");
    if (picker && picker.value) body.collection = picker.value;
    return body;
  }

  async function ask(question) {
    busy = true;
    button.disabled = true;
    showError("");
    const li = el("li", "turn waiting");
    li.appendChild(el("div", "bubble question", question));
    const pending = el("article", "bubble answer pending");
    pending.setAttribute("aria-busy", "true");
    pending.appendChild(el("p", "text", "Searching the corpus…"));
    li.appendChild(pending);
    thread.appendChild(li);
    showEmpty();
    li.scrollIntoView({ block: "end" });
    announce.textContent = "Searching the corpus…";
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(withCollection({ question: question, conversation_id: conversationId() || null })),
      });
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
      li.remove();
      if (!response.ok || !body || body.error || !validTurn(body.turn) ||
          !CONVERSATION_ID.test(body.conversation_id)) {
        const message = body && body.error && body.error.message ? body.error.message
          : "the server answered " + response.status;
        showEmpty();
        showError("Could not ask: " + message);
        announce.textContent = "";
        return;
      }
      adopt(body);
      const item = turnItem(body.turn);
      thread.appendChild(item);
      showEmpty();
      say(body.turn);
      // Whatever was typed while waiting stays; only the question just sent is cleared.
      if (input.value.trim() === question) {
        input.value = "";
        saveDraft();
      }
      item.scrollIntoView({ block: "nearest" });
    } catch (e) {
      li.remove();
      showEmpty();
      showError("Could not reach the server; check that it is running and try again.");
      announce.textContent = "";
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
  input.addEventListener("input", saveDraft);

  // Example questions ask at once.
  document.addEventListener("submit", (event) => {
    const f = event.target;
    if (!f.closest || !f.closest("#examples") || busy) return;
    event.preventDefault();
    const q = f.querySelector("input[name=question]");
    if (q) ask(q.value);
  });

  // --- feedback and deletion -----------------------------------------------------------------

  document.addEventListener("submit", async (event) => {
    const f = event.target;
    if (!f.classList || !f.classList.contains("feedback")) return;
    event.preventDefault();
    const submitter = event.submitter;
    if (!submitter || !submitter.value) return;
    const n = f.querySelector("input[name=n]").value;
    const comment = f.querySelector("textarea[name=comment]");
    const status = f.querySelector(".feedback-status");
    try {
      const response = await fetch("/api/conversations/" + conversationId() + "/turns/" + n +
                                   "/feedback", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ rating: submitter.value, comment: comment ? comment.value : "" }),
      });
      if (!response.ok) throw new Error(String(response.status));
      f.querySelectorAll("button.rate").forEach((b) => {
        b.setAttribute("aria-pressed", b === submitter ? "true" : "false");
      });
      status.textContent = "Thanks: marked " + (submitter.value === "up" ? "good" : "bad") + ".";
    } catch (e) {
      status.textContent = "The feedback could not be sent.";
    }
  });

  document.addEventListener("submit", async (event) => {
    const f = event.target;
    if (f.id !== "delete-form") return;
    event.preventDefault();
    try {
      const response = await fetch("/api/conversations/" + conversationId(), {
        method: "DELETE", headers: { accept: "application/json" },
      });
      if (!response.ok && response.status !== 404) throw new Error(String(response.status));
      window.location.assign("/");
    } catch (e) {
      showError("The conversation could not be deleted.");
    }
  });

  // --- coming back: a reload shows the server's copy; a page restored from the back/forward
  // cache catches up with turns added elsewhere meanwhile.

  async function resync() {
    const id = conversationId();
    if (!id) return;
    try {
      const response = await fetch("/api/conversations/" + id, { headers: { accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      if (!Array.isArray(body.turns) || !body.turns.every(validTurn)) return;
      if (body.turns.length !== thread.querySelectorAll("li.turn").length) {
        owned = body.owned;
        thread.replaceChildren(...body.turns.map(turnItem));
        showEmpty();
      }
    } catch (e) {
      // offline: keep what is shown
    }
  }

  window.addEventListener("pageshow", (event) => {
    if (event.persisted) resync();
  });
  // Back and forward may also show the browser's cached copy of the page.
  const navigation = window.performance && performance.getEntriesByType ?
    performance.getEntriesByType("navigation")[0] : null;
  if (navigation && navigation.type === "back_forward") resync();
  const draft = loadDraft();
  const questions = thread.querySelectorAll("li.turn .question");
  const last = questions.length ? questions[questions.length - 1].lastChild : null;
  if (draft && last && last.textContent.trim() === draft.trim()) {
    saveDraft(); // the plain form sent it before this script ran: it is no draft any more
  } else if (draft && !input.value) {
    input.value = draft;
  }
  showEmpty();
  if (window.location.pathname === "/" && conversationId()) idField.value = "";

  // --- example questions still being worked out ----------------------------------------------

  const examples = document.getElementById("examples");
  if (examples && examples.dataset.pending === "true") {
    let tries = 0;
    const poll = async () => {
      tries += 1;
      try {
        const response = await fetch("/api/collection", { headers: { accept: "application/json" } });
        const body = await response.json();
        if (response.ok && Array.isArray(body.examples)) {
          const list = document.getElementById("example-list");
          list.replaceChildren(...body.examples.filter(isStr).map((q) => {
            const li = el("li");
            const f = el("form");
            f.method = "post";
            f.action = "/";
            const hidden = el("input");
            hidden.type = "hidden";
            hidden.name = "question";
            hidden.value = q;
            const b = el("button", "example", q);
            b.type = "submit";
            f.appendChild(hidden);
            f.appendChild(b);
            li.appendChild(f);
            return li;
          }));
          const note = document.getElementById("examples-pending");
          if (note) note.remove();
          examples.dataset.pending = "false";
          return;
        }
      } catch (e) {
        // try again below
      }
      if (tries < 20) window.setTimeout(poll, 500);
    };
    window.setTimeout(poll, 300);
  }

  // --- previews: shown by the stylesheet on hover and focus; Escape hides them ------------

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const wrap = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".cite-wrap") : null;
    const open = document.querySelectorAll(".cite-wrap:hover, .cite-wrap:focus-within");
    if (wrap || open.length) {
      (wrap ? [wrap] : Array.from(open)).forEach((w) => w.classList.add("dismissed"));
      if (panel.hidden) event.stopImmediatePropagation();
    }
  }, true);
  const undismiss = (event) => {
    const wrap = event.target.closest && event.target.closest(".cite-wrap");
    if (wrap) wrap.classList.remove("dismissed");
  };
  document.addEventListener("focusout", undismiss);
  document.addEventListener("mouseout", undismiss);
  // Keep a preview inside the window.
  const fit = (event) => {
    const wrap = event.target.closest && event.target.closest(".cite-wrap");
    if (!wrap) return;
    const preview = wrap.querySelector(".preview");
    preview.style.left = "";
    wrap.classList.remove("above");
    const box = preview.getBoundingClientRect();
    const over = box.right - (document.documentElement.clientWidth - 8);
    if (over > 0) preview.style.left = -Math.min(over, box.left - 8) + "px";
    // Near the bottom (behind the question box), open it above the marker instead.
    const form = document.getElementById("ask-form").getBoundingClientRect();
    if (box.bottom > Math.min(window.innerHeight, form.top) && box.height < box.top) {
      wrap.classList.add("above");
    }
  };
  document.addEventListener("mouseover", fit);
  document.addEventListener("focusin", fit);

  // --- the source panel ---------------------------------------------------------------------

  const title = document.getElementById("source-title");
  const whereBox = document.getElementById("source-where");
  const noteBox = document.getElementById("source-note");
  const textBox = document.getElementById("source-text");
  const link = document.getElementById("source-link");
  const copy = document.getElementById("source-copy");
  let opener = null;

  // Document text cut where the passage, the highlights and the short answer begin and end,
  // like qa/server/sources.py; the short answer is a mark inside its sentence's mark.
  function fillText(text, passage, marks, short) {
    textBox.replaceChildren();
    const cuts = new Set([0, text.length]);
    for (const [a, b] of marks.concat(passage ? [passage] : [], short ? [short] : [])) {
      cuts.add(a);
      cuts.add(b);
    }
    const points = Array.from(cuts).filter((c) => c >= 0 && c <= text.length).sort((x, y) => x - y);
    let first = null;
    let open = null;
    for (let i = 0; i + 1 < points.length; i++) {
      const a = points[i];
      const b = points[i + 1];
      const piece = text.slice(a, b);
      if (marks.some(([s, e]) => s <= a && b <= e)) {
        if (!open) {
          open = el("mark");
          textBox.appendChild(open);
          first = first || open;
        }
        const inShort = short && short[0] <= a && b <= short[1];
        open.appendChild(inShort ? el("mark", "span", piece) : document.createTextNode(piece));
        continue;
      }
      open = null;
      if (passage && passage[0] <= a && b <= passage[1]) {
        textBox.appendChild(el("span", "passage", piece));
      } else {
        textBox.appendChild(document.createTextNode(piece));
      }
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
    opener = anchor;
    document.querySelectorAll("a.cite.active").forEach((a) => a.classList.remove("active"));
    if (anchor.classList.contains("cite")) anchor.classList.add("active");
    title.textContent = "Loading source…";
    whereBox.textContent = "";
    noteBox.hidden = true;
    textBox.replaceChildren();
    link.href = url.href;
    copy.textContent = "Copy link";
    panel.hidden = false;
    document.body.classList.add("panel-open");
    panel.focus();
    const query = new URLSearchParams();
    for (const key of ["passage", "highlight", "span", "quote", "prefix", "suffix"]) {
      const value = url.searchParams.get(key);
      if (value !== null) query.set(key, value);
    }
    const collection = url.searchParams.get("collection");
    if (collection) query.set("collection", collection);
    try {
      const response = await fetch("/api/documents/" + id + "/locate?" + query.toString(), {
        headers: { accept: "application/json" },
      });
      const doc = await response.json();
      if (!response.ok) throw new Error(doc.error ? doc.error.message : String(response.status));
      title.textContent = doc.title;
      const at = doc.highlight[0] || {};
      whereBox.textContent = place({ path: doc.path, page: at.page, section: at.section });
      if (doc.status === "moved") {
        noteBox.textContent = "The document has changed since this answer; the cited text was found again.";
        noteBox.hidden = false;
      } else if (doc.status === "gone") {
        noteBox.textContent = "The cited text is no longer in this document: “" +
          (url.searchParams.get("quote") || "").slice(0, 300) + "”";
        noteBox.hidden = false;
      }
      const marks = doc.highlight.map((s) => [s.start, s.end]);
      const target = fillText(doc.text, doc.passage, marks, doc.span);
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
