// qa admin: starts a rebuild through the JSON API and follows its progress as server-sent events.
// Without this file the form posts to /admin and the page refreshes itself while a build runs.
// Text from the server (errors, versions, phases) is only ever inserted with textContent.
"use strict";

(function () {
  const form = document.getElementById("rebuild-form");
  if (!form) return;
  const tokenInput = document.getElementById("admin-token");
  const full = document.getElementById("full");
  const button = document.getElementById("rebuild-button");
  const errorBox = document.getElementById("admin-error");
  const bar = document.getElementById("build-progress");
  const stateText = document.getElementById("build-state");
  const serving = document.getElementById("serving-version");
  const TOKEN_KEY = "qa-admin-token";
  let source = null;

  if (tokenInput) {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
    tokenInput.addEventListener("change", function () {
      sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
    });
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
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

  function describe(s) {
    if (s.state === "idle") return "No build since the server started.";
    if (s.state === "succeeded") return "Done: version " + s.version + ".";
    if (s.state === "failed") return "Failed: " + (s.error || "unknown error");
    let text = "Running: " + (s.phase || "starting");
    if (s.files_total) text += ", " + s.files_done + " of " + s.files_total + " files";
    return text + ".";
  }

  function render(s) {
    const p = percent(s);
    bar.value = p;
    bar.textContent = p + "%";
    stateText.textContent = describe(s);
    stateText.dataset.state = s.state;
    serving.textContent = s.serving_version;
    button.disabled = s.state === "running";
    if (s.state === "failed") showError("The build failed: " + (s.error || "unknown error"));
  }

  function follow() {
    if (source) source.close();
    button.disabled = true;
    source = new EventSource("/api/index/status/stream");
    source.addEventListener("status", function (event) {
      const s = JSON.parse(event.data);
      render(s);
      // The server ends the stream when the build ends; do not let the browser reconnect.
      if (s.state !== "running") {
        source.close();
        source = null;
      }
    });
    source.onerror = function () {
      if (source) source.close();
      source = null;
      button.disabled = false;
    };
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    showError("");
    const headers = { "content-type": "application/json", accept: "application/json" };
    const token = tokenInput ? tokenInput.value : "";
    if (tokenInput) sessionStorage.setItem(TOKEN_KEY, token);
    if (token) headers.authorization = "Bearer " + token;
    button.disabled = true;
    try {
      const response = await fetch("/api/index/rebuild", {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ full: full.checked }),
      });
      if (response.status === 202) {
        follow();
        return;
      }
      let message = "The rebuild could not start (HTTP " + response.status + ").";
      try {
        const body = await response.json();
        if (body && body.error && body.error.message) message = body.error.message;
      } catch (e) {
        // not JSON: keep the generic message
      }
      showError(message);
    } catch (e) {
      showError("The server could not be reached.");
    }
    button.disabled = false;
  });

  if (stateText.dataset.state === "running") follow();
})();
