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
  const intro = document.getElementById("intro");
  const newChat = document.getElementById("new-chat");
  const MAX_TURNS = 20;
  const MAX_MESSAGE = 4000;
  const DOC_ID = /^[0-9a-f]{16}$/;
  // The conversation and the unsent question live in this tab's session storage, so that a
  // reload or a trip back and forth through the history shows them again.
  const THREAD_KEY = "qa.thread.v1";
  const DRAFT_KEY = "qa.draft.v1";

  let turns = [];
  let busy = false;
  let conversation = 0; // bumped by "New conversation", so a late answer is not added to it

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // --- storage ------------------------------------------------------------------------------

  function load(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch (e) {
      return null; // storage disabled: the page still works, it just forgets on reload
    }
  }

  function store(key, value) {
    try {
      if (value) window.sessionStorage.setItem(key, value);
      else window.sessionStorage.removeItem(key);
    } catch (e) {
      // full or disabled: keep going without it
    }
  }

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

  // A turn as the API returns it; anything else (a damaged or old store) is dropped.
  function validTurn(t) {
    return !!t && typeof t === "object" && isStr(t.question) && isStr(t.query) &&
      isStr(t.answer) && typeof t.confidence === "number" && typeof t.abstained === "boolean" &&
      Array.isArray(t.citations) && t.citations.every(validCitation) && validSpan(t.answer_span) &&
      (t.reason === undefined || isStr(t.reason));
  }

  function parseTurns(raw) {
    try {
      const value = JSON.parse(raw || "[]");
      return Array.isArray(value) ? value.filter(validTurn).slice(-MAX_TURNS) : [];
    } catch (e) {
      return [];
    }
  }

  function save() {
    const json = JSON.stringify(turns);
    state.value = json; // the plain form carries the thread too
    store(THREAD_KEY, turns.length ? json : "");
  }

  function saveDraft() {
    store(DRAFT_KEY, input.value);
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

  // Only links into this site: a stored or forged turn cannot smuggle in another scheme.
  function safeHref(url) {
    return /^\/(?![/\\])/.test(url) ? url : "#";
  }

  // --- the short answer, as qa/web.py finds it -------------------------------------------------

  function shortAnswer(turn) {
    const span = turn.answer_span;
    return span && !turn.abstained && span.text.trim() ? span : null;
  }

  // The citation's link, carrying the short answer's span when it lies in this citation.
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

  // The answer cut into plain runs ({text}) and markers ({text, n}).
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

  // [run index, start, end] of the short answer inside a sentence cited as [n], or null.
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

  // The same structure as _answer.html, built node by node.
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
        const c = byN.get(p.n);
        const a = el("a", "cite", p.text);
        a.href = citeUrl(turn, c);
        a.setAttribute("aria-label", "Source " + c.n + ": " + c.title);
        text.appendChild(a);
        cited.add(c.n);
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
      details.open = !turn.abstained;
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
        li.appendChild(el("span", "where", where(c)));
        ol.appendChild(li);
      }
      details.appendChild(ol);
      article.appendChild(details);
    }
    article.appendChild(el("p", "meta", "confidence " + turn.confidence.toFixed(2)));
    return article;
  }

  function turnItem(turn) {
    const li = el("li", "turn");
    const q = el("div", "bubble question");
    q.appendChild(el("span", "sr-only", "You asked: "));
    q.appendChild(document.createTextNode(turn.question));
    li.appendChild(q);
    li.appendChild(answerArticle(turn));
    return li;
  }

  function showEmpty() {
    const empty = turns.length === 0 && !thread.querySelector("li.turn");
    if (intro) intro.hidden = !empty;
    if (newChat) newChat.hidden = empty;
  }

  // The whole thread drawn again from `turns` (a question still waiting is kept at the end).
  function render() {
    const waiting = thread.querySelector("li.turn.waiting");
    thread.replaceChildren(...turns.map(turnItem));
    if (waiting) thread.appendChild(waiting);
    showEmpty();
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
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
    const asked = conversation;
    const li = el("li", "turn waiting");
    const q = el("div", "bubble question", question);
    li.appendChild(q);
    const pending = el("article", "bubble answer pending");
    pending.setAttribute("aria-busy", "true");
    pending.appendChild(el("p", "text", "Searching the corpus…"));
    li.appendChild(pending);
    thread.appendChild(li);
    showEmpty();
    li.scrollIntoView({ block: "end" });
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(withCollection({ question: question, history: history() })),
      });
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
      if (!response.ok || !body || body.error || !validTurn(body)) {
        const message = body && body.error && body.error.message ? body.error.message
          : "the server answered " + response.status;
        li.remove();
        showEmpty();
        if (asked === conversation) showError("Could not ask: " + message);
        return;
      }
      li.remove();
      if (asked !== conversation) return; // the conversation was cleared meanwhile
      turns.push(body);
      turns = turns.slice(-MAX_TURNS);
      save();
      const item = turnItem(body);
      thread.appendChild(item);
      showEmpty();
      // Whatever the person typed while waiting stays; only the question just sent is cleared.
      if (input.value.trim() === question) {
        input.value = "";
        saveDraft();
      }
      item.scrollIntoView({ block: "nearest" });
    } catch (e) {
      li.remove();
      showEmpty();
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

  input.addEventListener("input", saveDraft);

  if (newChat) {
    newChat.addEventListener("submit", (event) => {
      event.preventDefault();
      conversation += 1;
      turns = [];
      save();
      thread.replaceChildren();
      showError("");
      showEmpty();
      input.focus();
    });
  }

  // What the page shows at start, and again when it comes back from the back/forward cache
  // (another page of this tab may have added turns meanwhile).
  function restore(fromCache) {
    if (!fromCache && thread.querySelector("li.turn")) {
      // The server drew this thread after a plain form post: adopt it, and make a reload
      // a plain GET rather than posting the question again.
      turns = parseTurns(state.value);
      save();
      saveDraft(); // the question was sent: the box holds what the server gave back
      try {
        window.history.replaceState(window.history.state, "", window.location.href);
      } catch (e) {
        // not fatal
      }
    } else {
      turns = parseTurns(load(THREAD_KEY));
      render();
      state.value = JSON.stringify(turns);
      const draft = load(DRAFT_KEY);
      if (draft && !input.value) input.value = draft;
    }
    showEmpty();
  }

  restore(false);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) restore(true);
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

  // Document text cut where the passage, the highlights and the short answer begin and end,
  // like qa/sources.py and qa/web.py; the short answer is a mark inside its sentence's mark.
  function fillText(text, passage, marks, short) {
    textBox.replaceChildren();
    const cuts = new Set([0, text.length]);
    for (const [a, b] of marks.concat(passage ? [passage] : [], short ? [short] : [])) {
      cuts.add(a);
      cuts.add(b);
    }
    const points = Array.from(cuts).filter((c) => c >= 0 && c <= text.length).sort((x, y) => x - y);
    let first = null;
    let open = null; // the mark being filled, while the pieces stay inside highlights
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
    const params = new URLSearchParams();
    const query = marks.map(([a, b]) => a + "-" + b).join(",");
    if (query) params.set("highlight", query);
    const collection = url.searchParams.get("collection");
    if (collection) params.set("collection", collection);
    const search = params.toString();
    try {
      const response = await fetch("/api/documents/" + id + (search ? "?" + search : ""), {
        headers: { accept: "application/json" },
      });
      const doc = await response.json();
      if (!response.ok) throw new Error(doc.error ? doc.error.message : String(response.status));
      title.textContent = doc.title;
      const at = doc.highlight[0] || {};
      whereBox.textContent = where({ path: doc.path, page: at.page, section: at.section });
      // The short answer counts only as one span inside a highlighted sentence.
      const asked = spans(url.searchParams.get("span"));
      let short = asked.length === 1 ? asked[0] : null;
      if (short && !(short[0] < short[1] && short[1] <= doc.text.length &&
                     marks.some(([s, e]) => s <= short[0] && short[1] <= e))) {
        short = null;
      }
      const target = fillText(doc.text, passage, marks, short);
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
