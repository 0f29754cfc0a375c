// qa documents: adds files by drag-and-drop or the file picker and removes documents, through
// the JSON API, and shows the rebuild's progress live. Without this file the forms post and
// the documents page refreshes itself while the index is rebuilt.
// Text from the server (names, errors) is only ever inserted with textContent.
"use strict";

(function () {
  const TOKEN_KEY = "qa-admin-token";

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function keepToken(value) {
    try {
      window.sessionStorage.setItem(TOKEN_KEY, value);
    } catch (e) {
      // not kept: asked again next time
    }
  }

  async function errorOf(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) {
      // not JSON
    }
    return "the server answered " + response.status;
  }

  // The same rough shares as the server's build_percent.
  function percent(s) {
    if (s.state === "succeeded" || s.state === "failed") return 100;
    if (s.state !== "running") return 0;
    if (s.phase === "reading") {
      return 5 + (s.files_total ? Math.floor((60 * s.files_done) / s.files_total) : 0);
    }
    return { starting: 2, embedding: 75, writing: 95 }[s.phase] || 5;
  }

  // Follows the rebuild until it ends; resolves with its last status. A rebuild that had to
  // wait for another one shows as a run of builds: it ends when the newest one does.
  function follow(onStatus, startedAfter) {
    return new Promise((resolve) => {
      let source = null;
      let done = false;
      const finish = (s) => {
        if (done) return;
        done = true;
        if (source) source.close();
        resolve(s);
      };
      const watch = () => {
        source = new EventSource("/api/index/status/stream");
        source.addEventListener("status", (event) => {
          const s = JSON.parse(event.data);
          onStatus(s);
          const ours = !startedAfter || (s.build_id && s.build_id !== startedAfter);
          if (s.state !== "running" && ours) finish(s);
          else if (s.state !== "running") {
            // The build we wait for has not started yet: look again shortly.
            source.close();
            window.setTimeout(watch, 500);
          }
        });
        source.onerror = () => {
          if (source) source.close();
          if (!done) window.setTimeout(watch, 1000);
        };
      };
      watch();
    });
  }

  function describe(s) {
    if (s.state === "running") {
      let text = "Indexing: " + (s.phase || "starting");
      if (s.files_total) text += ", " + s.files_done + " of " + s.files_total + " files";
      return text + "…";
    }
    if (s.state === "succeeded") return "Indexed.";
    if (s.state === "failed") return "The indexing failed: " + (s.error || "unknown error");
    return "Waiting for the index…";
  }

  // --- adding files ----------------------------------------------------------------------------

  const form = document.getElementById("upload-form");
  if (form) {
    const input = document.getElementById("upload-files");
    const tokenInput = document.getElementById("upload-token");
    const replace = document.getElementById("upload-replace");
    const button = document.getElementById("upload-button");
    const status = document.getElementById("upload-status");
    const progress = document.getElementById("upload-progress");
    const bar = document.getElementById("upload-bar");
    const zone = form;
    if (tokenInput && !tokenInput.value) tokenInput.value = storedToken();

    async function refreshList() {
      try {
        const response = await fetch("/api/collection", { headers: { accept: "application/json" } });
        if (!response.ok) return;
        const body = await response.json();
        const rows = document.getElementById("document-rows");
        if (!rows || !Array.isArray(body.documents)) return;
        rows.replaceChildren(...body.documents.slice(0, 100).map((d) => {
          const tr = document.createElement("tr");
          const title = document.createElement("td");
          const a = document.createElement("a");
          a.href = "/documents/" + encodeURIComponent(d.id);
          a.textContent = d.title;
          const path = document.createElement("span");
          path.className = "path";
          path.textContent = d.path;
          title.append(a, path);
          const size = document.createElement("td");
          size.textContent = d.bytes === null ? "—" : d.bytes < 1000 ? d.bytes + " bytes"
            : d.bytes < 1e6 ? (d.bytes / 1000).toFixed(1) + " kB" : (d.bytes / 1e6).toFixed(1) + " MB";
          const when = document.createElement("td");
          when.textContent = d.indexed_at ? new Date(d.indexed_at * 1000).toLocaleString() : "";
          tr.append(title, size, when);
          return tr;
        }));
        const count = document.querySelector("#library-title .count");
        if (count) count.textContent = "(" + body.documents.length + ")";
      } catch (e) {
        // the list stays as it was
      }
    }

    async function send(files) {
      if (!files || !files.length) {
        status.textContent = "Choose a file first.";
        return;
      }
      const data = new FormData();
      for (const f of files) data.append("files", f, f.name);
      data.append("replace", replace && replace.checked ? "true" : "false");
      const headers = { accept: "application/json" };
      if (tokenInput) {
        keepToken(tokenInput.value);
        if (tokenInput.value) headers.authorization = "Bearer " + tokenInput.value;
      }
      button.disabled = true;
      status.textContent = "Sending " + Array.from(files).map((f) => f.name).join(", ") + "…";
      let before = null;
      try {
        const now = await fetch("/api/index/status", { headers: { accept: "application/json" } });
        if (now.ok) before = (await now.json()).build_id;
      } catch (e) {
        before = null;
      }
      try {
        const response = await fetch("/api/documents", { method: "POST", headers: headers, body: data });
        if (response.status !== 202) {
          status.textContent = "Not added: " + await errorOf(response);
          return;
        }
        const body = await response.json();
        const names = body.files.map((f) => f.path).join(", ");
        progress.hidden = false;
        bar.value = 0;
        const last = await follow((s) => {
          bar.value = percent(s);
          bar.textContent = bar.value + "%";
          status.textContent = "Added " + names + ". " + describe(s);
        }, body.build_id ? null : before);
        if (last.state === "succeeded") {
          status.textContent = "Added and indexed " + names + ". Ask about it.";
          input.value = "";
          await refreshList();
        }
      } catch (e) {
        status.textContent = "Not added: the server could not be reached.";
      } finally {
        button.disabled = false;
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(input.files);
    });
    // Drag and drop anywhere on the form.
    ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    }));
    ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => {
      zone.classList.remove("dragging");
    }));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) send(event.dataTransfer.files);
    });
  }

  // --- removing a document -------------------------------------------------------------------

  const remove = document.getElementById("remove-form");
  if (remove) {
    const tokenInput = document.getElementById("remove-token");
    const status = document.getElementById("remove-status");
    const button = document.getElementById("remove-button");
    if (tokenInput && !tokenInput.value) tokenInput.value = storedToken();
    remove.addEventListener("submit", async (event) => {
      event.preventDefault();
      const headers = { accept: "application/json" };
      if (tokenInput) {
        keepToken(tokenInput.value);
        if (tokenInput.value) headers.authorization = "Bearer " + tokenInput.value;
      }
      const id = remove.action.split("/").slice(-2)[0];
      button.disabled = true;
      try {
        const response = await fetch("/api/documents/" + id, { method: "DELETE", headers: headers });
        if (response.status !== 202) {
          status.textContent = "Not removed: " + await errorOf(response);
          button.disabled = false;
          return;
        }
        const body = await response.json();
        const last = await follow((s) => {
          status.textContent = "Removed " + body.path + ". " + describe(s);
        }, null);
        if (last.state === "succeeded") {
          window.location.assign("/documents?removed=" + encodeURIComponent(body.path));
        }
      } catch (e) {
        status.textContent = "Not removed: the server could not be reached.";
        button.disabled = false;
      }
    });
  }
})();
