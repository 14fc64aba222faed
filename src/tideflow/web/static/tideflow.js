// Tideflow pages: live updates pushed over Server-Sent Events. No framework, no build step.
//
// Every page body says what it listens for (data-live-*). The script opens one EventSource on
// the project's event stream, starting at the offset the page was rendered at, so nothing that
// happens after the render is missed and nothing before it is replayed. Then:
//  - "fragment" pages refetch their own live part (?fragment=1, the same server-side template)
//    when a relevant event arrives, and swap it in;
//  - the events page adds each event as a new row;
//  - a log page also follows the attempt's log stream and appends what arrives.
// The browser's EventSource reconnects by itself and sends Last-Event-ID, so a dropped
// connection resumes where it stopped. Nothing polls on a timer.
//
// Write actions (button.act): each asks for confirmation in the page's <dialog id="confirm">,
// then POSTs its JSON body to the API with the page's CSRF token (meta csrf-token, the double
// of the tideflow_csrf cookie), shows the answer in #action-result and refetches the live part
// at once (the event stream refreshes it again as jobs move).
"use strict";

(() => {
  const body = document.body;
  const project = body.dataset.project;
  if (!project) return;
  const api = `/api/v1/projects/${encodeURIComponent(project)}`;
  const stateLabel = document.getElementById("live-state");

  function setState(text, live) {
    if (!stateLabel) return;
    stateLabel.textContent = text;
    stateLabel.classList.toggle("on", live);
  }

  function like(pattern, value) {
    if (!pattern) return true;
    if (pattern.endsWith("*")) return String(value).startsWith(pattern.slice(0, -1));
    return pattern === String(value);
  }

  function relevant(event) {
    const types = (body.dataset.liveTypes || "").split(",").filter(Boolean);
    if (types.length && !types.some((t) => like(t, event.event_type))) return false;
    if (!like(body.dataset.liveKey, event.key)) return false;
    const execution = body.dataset.liveExecution;
    const context = event.context || {};
    if (execution && context.execution_id != null && String(context.execution_id) !== execution) {
      return false;
    }
    return true;
  }

  function openStream(url, onData) {
    const source = new EventSource(url);
    const handle = (message) => onData(message.data, message.lastEventId);
    source.addEventListener("open", () => setState("● live", true));
    source.addEventListener("error", () => setState("○ reconnecting", false));
    source.addEventListener("message", handle);
    return source;
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (e) {
      return null;
    }
  }

  // -- fragment pages: refetch the live part when a relevant event arrives ------------------
  let fetching = false;
  let again = false;

  async function refresh() {
    if (fetching) {
      again = true; // one more fetch after this one: it may have missed the newest change
      return;
    }
    fetching = true;
    try {
      do {
        again = false;
        const url = new URL(window.location.href);
        url.searchParams.set("fragment", "1");
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) {
          document.getElementById("live").innerHTML = await response.text();
          if (window.tideflowGraph) window.tideflowGraph.colour(); // an execution's job states
          body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
        }
      } while (again);
    } finally {
      fetching = false;
    }
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function prettyValue(value) {
    // A value holding a JSON object (model version events) indented, as the server shows it.
    const text = value == null ? "" : String(value);
    if (!/^\s*[[{]/.test(text)) return text;
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (e) {
      return text;
    }
  }

  function addEventRow(event) {
    const table = document.getElementById("events");
    if (!table) return;
    const tbody = table.tBodies[0];
    if (tbody.querySelector(`tr[data-offset="${event.offset}"]`)) return;
    const row = document.createElement("tr");
    row.dataset.offset = String(event.offset);
    row.className = "new";
    const time = (event.create_time || "").replace("T", " ").slice(0, 19);
    const context = event.context && Object.keys(event.context).length ? JSON.stringify(event.context, null, 2) : "";
    row.append(
      cell(event.offset),
      cell(time),
      cell(event.event_type, "type"),
      cell(event.key, "key"),
      cell(prettyValue(event.value), "value"),
      cell(event.sender, "sender"),
      cell(context, "mono json"),
    );
    tbody.insertBefore(row, tbody.firstChild);
    while (tbody.rows.length > 1000) tbody.deleteRow(tbody.rows.length - 1);
    const empty = document.getElementById("no-events");
    if (empty) empty.remove();
  }

  const mode = body.dataset.liveStream;
  if (mode) {
    const params = new URLSearchParams();
    if (body.dataset.liveAfter) params.set("after_offset", body.dataset.liveAfter);
    const table = document.getElementById("events");
    if (mode === "fragment") {
      // Let the server filter what it can (one exact type, one exact key); the rest is
      // checked here (patterns, the execution in the event's context).
      const types = (body.dataset.liveTypes || "").split(",").filter(Boolean);
      if (types.length === 1 && !types[0].endsWith("*")) params.set("event_type", types[0]);
      const key = body.dataset.liveKey;
      if (key && !key.endsWith("*")) params.set("key", key);
    }
    if (mode === "events" && table) {
      for (const [name, value] of Object.entries({
        key: table.dataset.key,
        event_type: table.dataset.eventType,
        sender: table.dataset.sender,
      })) {
        if (value) params.set(name, value);
      }
    }
    openStream(`${api}/events/stream?${params}`, (data) => {
      const event = parse(data);
      if (!event || event.offset == null) return;
      body.dataset.lastOffset = String(event.offset);
      if (mode === "events") addEventRow(event);
      else if (relevant(event)) refresh();
    });
  }

  // -- the project switcher: the same section of the chosen project --------------------------
  const switcher = document.getElementById("project-switch");
  if (switcher) {
    switcher.addEventListener("change", () => {
      const section = switcher.dataset.section || "workflows";
      window.location.href = `/ui/${encodeURIComponent(switcher.value)}/${section}`;
    });
  }

  // -- write actions ------------------------------------------------------------------------
  const dialog = document.getElementById("confirm");
  const result = document.getElementById("action-result");
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

  function say(text, failed, href) {
    if (!result) return;
    result.textContent = text;
    result.classList.toggle("failed", failed);
    if (href) {
      const link = document.createElement("a");
      link.href = href;
      link.textContent = " open";
      result.append(link);
    }
  }

  function done(name, answer) {
    // One line that says what changed, from the entity the API answered with.
    const ui = `/ui/${encodeURIComponent(project)}`;
    if (answer == null) return [`${name}: done`, null];
    if ("version" in answer && "model" in answer) return [`model ${answer.model} v${answer.version}: ${answer.status}`, null];
    if ("paused" in answer) return [`workflow ${answer.workflow} ${answer.paused ? "paused" : "resumed"}`, null];
    if ("attempt" in answer && "job" in answer && !("job_execution_id" in answer)) {
      const a = answer.attempt;
      return [`job ${answer.job}: ${a ? `attempt ${a.attempt} ${a.status}, stopping` : "never ran"}`, null];
    }
    if ("job_execution_id" in answer) {
      return [`job ${answer.job}: attempt ${answer.attempt} ${answer.status}`, `${ui}/job-executions/${answer.job_execution_id}/log`];
    }
    if ("execution_id" in answer) {
      return [`execution #${answer.execution_id} of ${answer.workflow}: ${answer.status}`, `${ui}/executions/${answer.execution_id}`];
    }
    if ("offset" in answer) return [`event ${answer.event_type} key=${answer.key} sent (offset ${answer.offset})`, null];
    return [`${name}: done`, null];
  }

  async function perform(button, payload) {
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.actUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: payload == null ? undefined : JSON.stringify(payload),
      });
      let answer = null;
      try {
        answer = await response.json();
      } catch (e) {
        answer = null;
      }
      if (response.ok) {
        const [text, href] = done(button.dataset.act, answer);
        say(text, false, href);
      } else {
        const error = answer && answer.error ? answer.error : { message: response.statusText };
        const allowed = error.allowed && error.allowed.length ? ` (allowed: ${error.allowed.join(", ")})` : "";
        say(`${button.dataset.act} refused (${response.status}): ${error.message}${allowed}`, true, null);
      }
      body.dataset.acted = String(Number(body.dataset.acted || 0) + 1);
      await refresh();
    } catch (e) {
      say(`${button.dataset.act} failed: ${e}`, true, null);
    } finally {
      button.disabled = false;
    }
  }

  function formBody(button) {
    // A button inside form.act-form sends the form's named fields (context as JSON).
    const form = button.closest("form.act-form");
    if (!form) return undefined;
    const payload = {};
    for (const field of form.querySelectorAll("[name]")) {
      if (field.value === "" && field.name !== "value") continue;
      payload[field.name] = field.name === "context" ? JSON.parse(field.value) : field.value;
    }
    return payload;
  }

  if (dialog) {
    const text = document.getElementById("confirm-text");
    const paramsBox = document.getElementById("confirm-params-box");
    const params = document.getElementById("confirm-params");
    const problem = document.getElementById("confirm-error");
    let pending = null;

    dialog.querySelector("form").addEventListener("submit", (event) => {
      if (!pending || !event.submitter || event.submitter.value !== "ok") return;
      if (!paramsBox.hidden) {
        try {
          const parsed = JSON.parse(params.value || "{}");
          if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
          pending.payload = { ...(pending.payload || {}), params: parsed };
        } catch (e) {
          event.preventDefault();
          problem.textContent = `params must be a JSON object: ${e.message}`;
        }
      }
    });
    dialog.addEventListener("close", () => {
      const chosen = pending;
      pending = null;
      if (chosen && dialog.returnValue === "ok") perform(chosen.button, chosen.payload);
    });
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button.act");
      if (!button) return;
      event.preventDefault();
      let payload;
      try {
        payload = button.dataset.actBody ? JSON.parse(button.dataset.actBody) : formBody(button);
      } catch (e) {
        say(`${button.dataset.act}: ${e.message}`, true, null);
        return;
      }
      pending = { button, payload };
      text.textContent = button.dataset.actConfirm || `${button.textContent}?`;
      paramsBox.hidden = button.dataset.actParams !== "true";
      problem.textContent = "";
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  // -- a job's log: follow it while the attempt runs ------------------------------------------
  const log = document.getElementById("log");
  if (log && log.dataset.complete !== "true") {
    // The stream starts with the same last lines the server rendered (tail), then follows; its
    // first message replaces the rendered text, later ones append (a reconnect resumes at the
    // byte offset of the last message, through Last-Event-ID).
    let first = true;
    const params = new URLSearchParams({ tail: log.dataset.tail || "500" });
    const source = openStream(
      `${api}/job-executions/${log.dataset.jobExecution}/logs/stream?${params}`,
      (data) => {
        const piece = parse(data);
        const text = piece && typeof piece === "object" ? piece.text || "" : data;
        if (!text) return;
        const follow = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
        if (first) log.textContent = "";
        first = false;
        log.dataset.streamed = "true";
        log.append(document.createTextNode(text));
        if (piece && piece.after != null) log.dataset.offset = String(piece.after);
        if (follow) window.scrollTo(0, document.body.scrollHeight);
      },
    );
    source.addEventListener("end", () => {
      source.close();
      log.dataset.complete = "true";
      refresh();
    });
  }
})();
