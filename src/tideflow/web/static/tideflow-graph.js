// Tideflow's workflow graph: the server's scene (#graph-spec, JSON), laid out with dagre.
//
// Two levels: each job's nodes are laid out inside it (left to right along data edges), which
// gives the job's size; then jobs and trigger boxes are laid out with every edge between them:
// control edges (dashed; red for STOP/RESTART) and dataset edges (dotted, teal: a job that
// writes a dataset or stream to a job that reads it). Text is measured as drawn, and every edge
// label is a box dagre places beside its line (labelpos "r"), so labels sit on no line and
// take space no box takes. The view starts fitted to its box; Fit, +, − and the mouse wheel
// zoom, dragging pans. On an execution's page each job is coloured by the state of its latest
// attempt (read from the live #jobs table, so it follows the run).
"use strict";

(() => {
  const svg = document.getElementById("graph");
  const specNode = document.getElementById("graph-spec");
  if (!svg || !specNode || typeof dagre === "undefined") return;
  const spec = JSON.parse(specNode.textContent);
  const NS = "http://www.w3.org/2000/svg";
  const PAD = 14;
  const HEADER = 30;
  const NODE_HEIGHT = 42;
  const LABEL_HEIGHT = 16;

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.append(node);
    return node;
  }

  function text(parent, attrs, content) {
    const node = el("text", attrs, parent);
    node.textContent = content;
    return node;
  }

  const measurer = el("g", { visibility: "hidden" }, svg);
  function width(content, className) {
    const node = text(measurer, { class: className }, content);
    const found = node.getComputedTextLength();
    node.remove();
    return found;
  }

  const round = (v) => Math.round(v * 10) / 10;

  function smooth(points, radius = 6) {
    // A polyline through ``points`` with its corners rounded by at most ``radius``.
    const p = points.map((q) => [q.x, q.y]);
    let d = `M${round(p[0][0])},${round(p[0][1])}`;
    for (let i = 1; i < p.length - 1; i++) {
      const [a, b, c] = [p[i - 1], p[i], p[i + 1]];
      const inLen = Math.hypot(b[0] - a[0], b[1] - a[1]);
      const outLen = Math.hypot(c[0] - b[0], c[1] - b[1]);
      const r = Math.min(radius, inLen / 2, outLen / 2);
      if (r < 0.5) {
        d += ` L${round(b[0])},${round(b[1])}`;
        continue;
      }
      const before = [b[0] + ((a[0] - b[0]) * r) / inLen, b[1] + ((a[1] - b[1]) * r) / inLen];
      const after = [b[0] + ((c[0] - b[0]) * r) / outLen, b[1] + ((c[1] - b[1]) * r) / outLen];
      d += ` L${round(before[0])},${round(before[1])} Q${round(b[0])},${round(b[1])} ${round(after[0])},${round(after[1])}`;
    }
    const last = p[p.length - 1];
    return `${d} L${round(last[0])},${round(last[1])}`;
  }

  function throughColumns(points, columns) {
    // dagre puts edge labels in ranks of their own, which only edges cross; an edge is drawn
    // straight across such a rank, level with its own place in it, so it can only meet a label
    // in its own row, where dagre left room between them. Corners stay outside the column.
    const out = [points[0]];
    for (let i = 1; i < points.length - 1; i++) {
      const q = points[i];
      const column = columns.find((c) => Math.abs(c.x - q.x) < 1);
      if (column) {
        out.push({ x: q.x - column.half - 10, y: q.y }, { x: q.x + column.half + 10, y: q.y });
      } else {
        out.push(q);
      }
    }
    out.push(points[points.length - 1]);
    return out;
  }

  // -- inside each job ----------------------------------------------------------------------
  const jobs = new Map();
  for (const job of spec.jobs) {
    const inner = new dagre.graphlib.Graph();
    inner.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 40, marginx: 0, marginy: 0 });
    inner.setDefaultEdgeLabel(() => ({}));
    for (const node of job.nodes) {
      const kind = node.detail ? `${node.kind} · ${node.detail}` : node.kind;
      const w = Math.max(96, width(node.name, "node-name"), width(kind, "node-kind")) + 20;
      inner.setNode(node.name, { width: w, height: NODE_HEIGHT, node, kind });
    }
    for (const edge of job.edges) inner.setEdge(edge.source, edge.target);
    dagre.layout(inner);
    const meta = `${job.engine}/${job.platform}${job.streaming ? " · streaming" : ""}`;
    const title = width(job.name, "job-name") + 8 + width(meta, "job-meta") + 70;
    const size = inner.graph();
    jobs.set(job.name, {
      job,
      inner,
      meta,
      width: Math.max(size.width || 0, title) + 2 * PAD,
      height: (size.height || 0) + HEADER + PAD,
    });
  }

  // -- jobs, triggers and the edges between them --------------------------------------------
  const triggerIds = new Set(spec.triggers.map((t) => t.id));
  const sourceIds = new Set((spec.sources || []).map((t) => t.id));
  const key = (name) => (triggerIds.has(name) ? `t:${name}` : sourceIds.has(name) ? `s:${name}` : `j:${name}`);
  const outer = new dagre.graphlib.Graph({ multigraph: true });
  outer.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 90, edgesep: 24, marginx: 24, marginy: 24 });
  for (const [name, box] of jobs) outer.setNode(`j:${name}`, { width: box.width, height: box.height });
  for (const trigger of spec.triggers) {
    outer.setNode(`t:${trigger.id}`, { width: width(trigger.label, "trigger-text") + 22, height: 30 });
  }
  for (const source of spec.sources || []) {
    outer.setNode(`s:${source.id}`, { width: width(source.label, "trigger-text") + 22, height: 26 });
  }
  const edges = [];
  spec.control.forEach((edge, i) => edges.push({ ...edge, kind: "control", name: `c${i}` }));
  spec.datasets.forEach((edge, i) => edges.push({ ...edge, kind: edge.kind || "dataset", name: `d${i}` }));
  for (const edge of edges) {
    const labelled = Boolean(edge.label);
    outer.setEdge(
      key(edge.source),
      key(edge.target),
      labelled
        ? { width: width(edge.label, "edge-label") + 12, height: LABEL_HEIGHT, labelpos: "r", labeloffset: 6 }
        : { width: 0, height: 0 },
      edge.name,
    );
  }
  dagre.layout(outer);
  const bounds = outer.graph();

  // -- drawing ------------------------------------------------------------------------------
  const scene = el("g", { class: "scene" }, svg);
  const boxes = el("g", { class: "boxes" }, scene);
  const lines = el("g", { class: "lines" }, scene);
  const labels = el("g", { class: "labels" }, scene);

  for (const [name, box] of jobs) {
    const at = outer.node(`j:${name}`);
    const x = at.x - box.width / 2;
    const y = at.y - box.height / 2;
    const job = box.job;
    const group = el("g", {
      class: `job ${job.streaming ? "streaming" : "batch"}`,
      "data-job": name,
      "data-streaming": String(job.streaming),
    }, boxes);
    el("title", {}, group).textContent =
      `job ${name}: ${job.engine} on ${job.platform}, ${job.streaming ? "streaming" : "batch"}`;
    el("rect", { x, y, width: box.width, height: box.height, rx: 8 }, group);
    const title = text(group, { class: "job-name", x: x + 12, y: y + 20 }, name);
    const meta = el("tspan", { class: "job-meta", dx: 8 }, title);
    meta.textContent = box.meta;
    const state = el("tspan", { class: "job-state", dx: 8 }, title);
    state.textContent = "";
    const ox = x + PAD;
    const oy = y + HEADER;
    for (const edge of job.edges) {
      const points = box.inner.edge(edge.source, edge.target).points.map((p) => ({ x: p.x + ox, y: p.y + oy }));
      el("path", {
        class: "edge data",
        "data-edge": `data:${edge.source}->${edge.target}`,
        d: smooth(points),
        "marker-end": "url(#arrow-data)",
      }, group);
    }
    for (const nodeName of box.inner.nodes()) {
      const placed = box.inner.node(nodeName);
      const node = placed.node;
      const nx = ox + placed.x - placed.width / 2;
      const ny = oy + placed.y - placed.height / 2;
      const g = el("g", { class: `node kind-${node.kind}`, "data-node": node.name, "data-kind": node.kind }, group);
      el("title", {}, g).textContent = `${node.kind} ${node.name}${node.detail ? ` (${node.detail})` : ""}`;
      el("rect", { x: nx, y: ny, width: placed.width, height: placed.height, rx: 5 }, g);
      text(g, { class: "node-name", x: nx + 9, y: ny + 17 }, node.name);
      text(g, { class: "node-kind", x: nx + 9, y: ny + 33 }, placed.kind);
    }
  }
  for (const source of spec.sources || []) {
    const at = outer.node(`s:${source.id}`);
    const x = at.x - at.width / 2;
    const y = at.y - at.height / 2;
    const g = el("g", { class: "source", "data-source": source.id }, boxes);
    el("rect", { x, y, width: at.width, height: at.height, rx: 4 }, g);
    text(g, { class: "trigger-text", x: x + 11, y: y + 17 }, source.label);
  }
  for (const trigger of spec.triggers) {
    const at = outer.node(`t:${trigger.id}`);
    const x = at.x - at.width / 2;
    const y = at.y - at.height / 2;
    const g = el("g", { class: `trigger kind-${trigger.kind}`, "data-trigger": trigger.id }, boxes);
    el("rect", { x, y, width: at.width, height: at.height, rx: 15 }, g);
    text(g, { class: "trigger-text", x: x + 11, y: y + 19 }, trigger.label);
  }
  const columns = [];
  for (const edge of edges) {
    const laid = outer.edge({ v: key(edge.source), w: key(edge.target), name: edge.name });
    if (!edge.label) continue;
    const found = columns.find((c) => Math.abs(c.x - laid.x) < 1);
    if (found) found.half = Math.max(found.half, laid.width / 2);
    else columns.push({ x: laid.x, half: laid.width / 2 });
  }
  for (const edge of edges) {
    const laid = outer.edge({ v: key(edge.source), w: key(edge.target), name: edge.name });
    const group = el("g", {
      class: `edge-group ${edge.kind}`,
      "data-edge": `${edge.kind}:${edge.source}->${edge.target}`,
      "data-action": edge.action || "",
      "data-dataset": edge.kind === "control" ? "" : edge.name,
    }, lines);
    const kindClass = edge.kind === "control" ? `control action-${String(edge.action).toLowerCase()}` : `dataset ${edge.kind}`;
    el("path", {
      class: `edge ${kindClass}`,
      d: smooth(throughColumns(laid.points, columns)),
      "marker-end": `url(#arrow-${edge.kind === "control" ? "control" : edge.kind === "model" ? "model" : "dataset"})`,
    }, group);
    if (!edge.label) continue;
    const label = el("g", { class: `edge-label-box ${edge.kind}`, "data-edge": `${edge.kind}:${edge.source}->${edge.target}` }, labels);
    el("rect", {
      class: "edge-label-bg",
      x: laid.x - laid.width / 2,
      y: laid.y - laid.height / 2,
      width: laid.width,
      height: laid.height,
      rx: 3,
    }, label);
    text(label, { class: "edge-label", x: laid.x, y: laid.y + 4, "text-anchor": "middle" }, edge.label);
  }
  measurer.remove();

  // -- zoom, fit and pan ----------------------------------------------------------------------
  const full = { w: bounds.width || 1, h: bounds.height || 1 };
  svg.style.height = `${Math.min(Math.max(full.h, 140), 620)}px`;
  const view = { x: 0, y: 0, w: full.w, h: full.h };
  function apply() {
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }
  function fit() {
    // The whole graph in the box, never enlarged beyond its natural size.
    const boxW = svg.clientWidth || full.w;
    const boxH = svg.clientHeight || full.h;
    const scale = Math.min(boxW / full.w, boxH / full.h, 1);
    view.w = boxW / scale;
    view.h = boxH / scale;
    view.x = (full.w - view.w) / 2;
    view.y = (full.h - view.h) / 2;
    apply();
  }
  function zoom(factor, cx, cy) {
    const x = cx == null ? view.x + view.w / 2 : cx;
    const y = cy == null ? view.y + view.h / 2 : cy;
    view.x = x - (x - view.x) / factor;
    view.y = y - (y - view.y) / factor;
    view.w /= factor;
    view.h /= factor;
    apply();
  }
  function toGraph(event) {
    const rect = svg.getBoundingClientRect();
    const scale = Math.min(rect.width / view.w, rect.height / view.h);
    const offsetX = (rect.width - view.w * scale) / 2;
    const offsetY = (rect.height - view.h * scale) / 2;
    return [view.x + (event.clientX - rect.left - offsetX) / scale, view.y + (event.clientY - rect.top - offsetY) / scale, scale];
  }
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x, y] = toGraph(event);
    zoom(event.deltaY < 0 ? 1.2 : 1 / 1.2, x, y);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, vx: view.x, vy: view.y, scale: toGraph(event)[2] };
    svg.setPointerCapture(event.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    view.x = drag.vx - (event.clientX - drag.x) / drag.scale;
    view.y = drag.vy - (event.clientY - drag.y) / drag.scale;
    apply();
  });
  const stop = () => {
    drag = null;
    svg.classList.remove("dragging");
  };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);
  const button = (id, action) => {
    const found = document.getElementById(id);
    if (found) found.addEventListener("click", action);
  };
  button("graph-fit", fit);
  button("graph-zoom-in", () => zoom(1.25));
  button("graph-zoom-out", () => zoom(1 / 1.25));

  // -- job states (an execution's page) -------------------------------------------------------
  function colour() {
    const rows = document.querySelectorAll("#jobs tr[data-job]");
    for (const row of rows) {
      const group = svg.querySelector(`g.job[data-job="${CSS.escape(row.dataset.job)}"]`);
      if (!group) continue;
      const state = (row.dataset.status || "").toLowerCase();
      group.setAttribute("class", group.getAttribute("class").replace(/ ?state-\S+/g, "") + (state ? ` state-${state}` : ""));
      group.dataset.state = row.dataset.status || "";
      const label = group.querySelector(".job-state");
      if (label) label.textContent = row.dataset.status || "";
    }
  }
  colour();
  fit();
  svg.dataset.ready = "true";
  window.tideflowGraph = { fit, zoom, colour, size: full };
})();
