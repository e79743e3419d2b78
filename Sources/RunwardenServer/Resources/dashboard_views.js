"use strict";
/*
 * The dashboard's pictures (served inside the page, before its main script): the run page's task
 * graph and attempt timeline, and the runs list's workflow history. Plain SVG built element by
 * element: task names, run ids and every other text arrive as text nodes or attribute values,
 * never as markup. The page's helpers (h, fmtDuration, TASK_TERMINAL) are used when called.
 */
const RunViews = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";

  /** Builds an SVG element, as h() builds an HTML one. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const c of children.flat(Infinity)) {
      if (c != null && c !== false) el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);
  const list = (value) => (Array.isArray(value) ? value.map(String).join(", ") : String(value));
  /** Enter or Space on a focused element does what a click does. */
  const onActivate = (el, fn) => {
    el.addEventListener("click", fn);
    el.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fn(); } });
  };

  /**
   * What holds a waiting task or run, in words: its unmet needs, a workspace lock and its holder,
   * a person's approval, a concurrency key and the runs holding it. A reason this page does not
   * know yet shows as its members, so a newer server's reason is never hidden.
   */
  function holdText(blocked, nameOf) {
    if (!blocked || typeof blocked !== "object") return null;
    const name = nameOf || String;
    // No unmet needs: a task of a run that waits for a concurrency slot (the run's hold says why).
    if (Array.isArray(blocked.needs)) return blocked.needs.length ? "waits for " + blocked.needs.join(", ") : null;
    if (blocked.workspace != null) {
      return "waits for workspace " + blocked.workspace + (blocked.held_by ? " (held by " + name(blocked.held_by) + ")" : "");
    }
    if (blocked.approval) return "waits for approval";
    if (blocked.concurrency != null) {
      const held = Array.isArray(blocked.held_by) && blocked.held_by.length ? " (held by " + list(blocked.held_by) + ")" : "";
      return "waits for concurrency " + blocked.concurrency + held;
    }
    const parts = Object.entries(blocked).map(([key, value]) =>
      value === true ? key : key + " " + (value && typeof value === "object" && !Array.isArray(value) ? JSON.stringify(value) : list(value)));
    return parts.length ? "waits for " + parts.join("; ") : null;
  }

  /* ==== The task graph: one node per task, edges from needs, columns by depth ==== */

  /**
   * Past this many tasks the graph shows each depth as one column with counts per status. Up to
   * it a node each stays readable (a column of 200 nodes is already ~11,000 px tall) and drawing
   * is cheap; past it names can no longer be read anyway (see BENCHMARKS.md for the figures).
   */
  const GRAPH_NODE_LIMIT = 200;
  const COLUMN_TOP = 62;   // a depth column's header: name, count, status bar; then a line per status
  const NODE_W = 176, NODE_H = 44, WAYPOINT_H = 10, COL_GAP = 56, ROW_GAP = 12, PAD = 8;

  /** Each task's depth: 0 without needs, else one more than its deepest need (Kahn's order; needs form no cycle). */
  function depthsOf(tasks, indexByName) {
    const depth = new Array(tasks.length).fill(0);
    const left = tasks.map(() => 0);
    const dependents = tasks.map(() => []);
    tasks.forEach((t, i) => (t.needs || []).forEach((n) => {
      const j = indexByName.get(n);
      if (j != null) { dependents[j].push(i); left[i]++; }
    }));
    const order = [];
    left.forEach((n, i) => { if (n === 0) order.push(i); });
    for (let q = 0; q < order.length; q++) {
      for (const j of dependents[order[q]]) {
        depth[j] = Math.max(depth[j], depth[order[q]] + 1);
        if (--left[j] === 0) order.push(j);
      }
    }
    return depth;
  }

  /**
   * The layers: columns of items by depth, a task each, and a waypoint in every column an edge
   * passes over (a need two or more depths back), so long edges run between the nodes instead of
   * through them. Within a column items sit near the mean position of what they come from (one
   * sweep, left to right: fewer crossings). Items: {task} or {waypoint}; each has `from` (items).
   */
  function layersOf(tasks, depth, indexByName) {
    const columns = Array.from({ length: Math.max(0, ...depth) + 1 }, () => []);
    const items = tasks.map((t, i) => ({ task: i, from: [], order: i }));
    items.forEach((item, i) => columns[depth[i]].push(item));
    const edges = [];   // {from: task index, to: task index, via: [waypoint items]}
    tasks.forEach((t, i) => (t.needs || []).forEach((n) => {
      const j = indexByName.get(n);
      if (j == null) return;
      const via = [];
      let previous = items[j];
      for (let d = depth[j] + 1; d < depth[i]; d++) {
        const waypoint = { waypoint: true, from: [previous], order: tasks.length + edges.length };
        columns[d].push(waypoint);
        via.push(waypoint);
        previous = waypoint;
      }
      items[i].from.push(previous);
      edges.push({ from: j, to: i, via });
    }));
    columns.forEach((column, d) => {
      if (d > 0) {
        for (const item of column) {
          item.key = item.from.length ? item.from.reduce((sum, f) => sum + f.position, 0) / item.from.length : 0;
        }
        column.sort((a, b) => a.key - b.key || a.order - b.order);
      }
      column.forEach((item, position) => { item.position = position; });
    });
    return { columns, items, edges };
  }

  /**
   * The graph section. update(run) draws it the first time (and when the task set changes), after
   * that only moves statuses, so a live run repaints without a new layout. mark(id) highlights the
   * selected task; onSelect(id) is called when a node is clicked or activated from the keyboard.
   */
  function createGraph(onSelect) {
    const hold = h("p", { class: "run-hold", id: "run-hold", hidden: true });
    const note = h("p", { class: "muted view-note" });
    const wrap = h("div", { class: "graph-wrap" });
    const el = h("section", { class: "panel run-view", id: "run-graph" }, h("h2", {}, "Graph"), hold, note, wrap);
    let layoutKey = null, nodes = new Map(), edges = [], columns = null, selected = null;

    function update(run) {
      const tasks = run.tasks || [];
      const key = tasks.map((t) => t.id).join(" ");
      if (key !== layoutKey) {
        layoutKey = key;
        if (tasks.length > GRAPH_NODE_LIMIT) drawColumns(tasks); else drawNodes(tasks);
      }
      const runHold = holdText(run.blocked_by);
      hold.hidden = !runHold;
      hold.textContent = runHold ? "This run " + runHold : "";
      paint(run, tasks, runHold);
    }

    function drawNodes(tasks) {
      const indexByName = new Map(tasks.map((t, i) => [t.name, i]));
      const layers = layersOf(tasks, depthsOf(tasks, indexByName), indexByName);
      const cols = layers.columns;
      columns = null;
      const heightOf = (item) => (item.waypoint ? WAYPOINT_H : NODE_H);
      const columnHeight = (column) => column.reduce((sum, item) => sum + heightOf(item) + ROW_GAP, -ROW_GAP);
      const tallest = Math.max(NODE_H, ...cols.map(columnHeight));
      const height = PAD * 2 + tallest;
      cols.forEach((column, d) => {
        let y = PAD + (tallest - columnHeight(column)) / 2;   // columns centred on each other
        for (const item of column) {
          item.x = PAD + d * (NODE_W + COL_GAP);
          item.y = y;
          item.mid = y + heightOf(item) / 2;
          y += heightOf(item) + ROW_GAP;
        }
      });
      const pos = layers.items;
      const svg = s("svg", { class: "view", "data-graph": "nodes", role: "group", "aria-label": "Task graph",
        width: PAD * 2 + cols.length * (NODE_W + COL_GAP) - COL_GAP, height },
        s("defs", {}, s("marker", { id: "graph-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
          s("path", { class: "arrow", d: "M0,0 L8,4 L0,8 z" }))));
      edges = layers.edges.map(({ from, to, via }) => {
        // From the need's right side, through each waypoint's column, into the task's left side.
        let x = pos[from].x + NODE_W, y = pos[from].mid, d = `M${x},${y}`;
        for (const stop of [...via, pos[to]]) {
          const bend = (stop.x - x) / 2;
          d += ` C${x + bend},${y} ${stop.x - bend},${stop.mid} ${stop.x},${stop.mid}`;
          x = stop.x;
          y = stop.mid;
          if (stop.waypoint) { x += NODE_W; d += ` H${x}`; }
        }
        const path = s("path", { class: "edge", "data-from": tasks[from].name, "data-to": tasks[to].name, "marker-end": "url(#graph-arrow)", d });
        svg.append(path);
        return { path, from: tasks[from].id };
      });
      nodes = new Map();
      tasks.forEach((t, i) => {
        const title = s("title", {});
        const sub = s("text", { class: "sub", x: 10, y: 34 });
        const g = s("g", { class: "node", "data-task": t.name, "data-task-id": t.id, tabindex: 0, role: "button",
          transform: `translate(${pos[i].x},${pos[i].y})` },
          title, s("rect", { width: NODE_W, height: NODE_H, rx: 6 }), s("text", { x: 10, y: 18 }, clip(t.name, 24)), sub);
        onActivate(g, () => onSelect(t.id));
        nodes.set(t.id, { g, title, sub });
        svg.append(g);
      });
      note.textContent = tasks.length ? "Left to right by depth; an arrow runs from a task to the one that needs it. Select a task for its row and log." : "";
      wrap.replaceChildren(svg);
      mark(selected);
    }

    function drawColumns(tasks) {
      const indexByName = new Map(tasks.map((t, i) => [t.name, i]));
      const depth = depthsOf(tasks, indexByName);
      const count = Math.max(...depth) + 1;
      const svg = s("svg", { class: "view", "data-graph": "columns", role: "group", "aria-label": "Tasks by depth",
        width: PAD * 2 + count * (NODE_W + COL_GAP) - COL_GAP, height: PAD * 2 + COLUMN_TOP });
      columns = Array.from({ length: count }, (_, d) => {
        const lines = s("g", {}), bar = s("g", {});
        const box = s("rect", { class: "box", width: NODE_W, height: COLUMN_TOP, rx: 6 });
        const total = s("text", { class: "sub", x: 10, y: 38 });
        const g = s("g", { class: "depth-col", "data-depth": d, transform: `translate(${PAD + d * (NODE_W + COL_GAP)},${PAD})` },
          box, s("text", { x: 10, y: 20 }, "depth " + d), total, bar, lines);
        if (d > 0) {
          svg.append(s("path", { class: "edge", "data-state": "met", "marker-end": "url(#graph-arrow)",
            d: `M${PAD + d * (NODE_W + COL_GAP) - COL_GAP},${PAD + 30} h${COL_GAP}` }));
        }
        svg.append(g);
        return { g, box, total, bar, lines, members: [] };
      });
      columns.svg = svg;
      svg.prepend(s("defs", {}, s("marker", { id: "graph-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
        s("path", { class: "arrow", d: "M0,0 L8,4 L0,8 z" }))));
      tasks.forEach((_, i) => columns[depth[i]].members.push(i));
      nodes = new Map();
      edges = [];
      note.textContent = tasks.length + " tasks: over " + GRAPH_NODE_LIMIT + " the graph shows each depth as a column with its tasks counted by status; the table below lists every task.";
      wrap.replaceChildren(svg);
    }

    function paint(run, tasks, runHold) {
      if (columns) {
        for (const column of columns) {
          const counts = new Map();
          for (const i of column.members) counts.set(tasks[i].status, (counts.get(tasks[i].status) || 0) + 1);
          column.total.textContent = column.members.length + " task" + (column.members.length === 1 ? "" : "s");
          column.g.dataset.count = String(column.members.length);
          const present = STATUSES.task.filter((st) => counts.get(st));
          column.lines.replaceChildren(...present.map((st, k) =>
            s("text", { class: "tone-" + st, x: 10, y: COLUMN_TOP + 4 + k * 16, "data-status": st }, counts.get(st) + " " + st)));
          // A bar split by status, as wide as the column: the share of each at a glance.
          let x = 10;
          column.bar.replaceChildren(...present.map((st) => {
            const w = ((NODE_W - 20) * counts.get(st)) / column.members.length;
            const part = s("rect", { class: "tone-" + st, x, y: 46, width: w, height: 8 });
            x += w;
            return part;
          }));
          column.box.setAttribute("height", COLUMN_TOP + 8 + present.length * 16);
        }
        const tallest = Math.max(...columns.map((c) => Number(c.box.getAttribute("height"))));
        columns.svg.setAttribute("height", PAD * 2 + tallest);
        return;
      }
      const byID = new Map(tasks.map((t) => [t.id, t]));
      const nameOf = (id) => (byID.get(id) || { name: id }).name;
      for (const t of tasks) {
        const node = nodes.get(t.id);
        if (!node) continue;
        // A queued task of a run held at run level (concurrency) shows the run's reason.
        const held = holdText(t.blocked_by, nameOf) || ((t.status === "queued" || t.status === "pending") && runHold) || null;
        const line = held || t.status + (t.attempt > 1 ? " · attempt " + t.attempt : "") + (t.reused_from ? " · reused" : "");
        node.g.setAttribute("data-status", t.status);
        node.g.setAttribute("aria-label", t.name + ": " + line);
        node.sub.textContent = clip(line, 30);
        node.title.textContent = t.name + "\n" + t.status + (held ? "\n" + held : "");
      }
      for (const edge of edges) {
        const from = byID.get(edge.from);
        edge.path.setAttribute("data-state", from && from.status === "succeeded" ? "met" : from && TASK_TERMINAL.has(from.status) ? "ended" : "waiting");
      }
    }

    function mark(taskId) {
      selected = taskId;
      nodes.forEach((node, id) => node.g.classList.toggle("selected", id === taskId));
    }

    return { el, update, mark };
  }

  /* ==== The timeline: each attempt's queued wait and run time, from the run's events ==== */

  /** At most this many attempts are drawn per task (retries are bounded by the task's spec; this bounds hostile input). */
  const MAX_ATTEMPTS = 100;

  /**
   * Each task's attempts from the run's events: when it was queued, claimed, and ended, and how.
   * A task queued when its run was created has no queued event: it waited from the run's creation.
   */
  function attemptsOf(run, events) {
    const byTask = new Map((run.tasks || []).map((t) => [t.id, []]));
    const attempt = (attempts, n) => {
      while (attempts.length < n) attempts.push({ attempt: attempts.length + 1, queued: null, claimed: null, ended: null, end: null, from: null });
      return attempts[n - 1];
    };
    for (const ev of events) {
      const attempts = ev.task_id ? byTask.get(ev.task_id) : null;
      const at = Date.parse(ev.timestamp);
      if (!attempts || !Number.isSafeInteger(ev.attempt) || ev.attempt < 1 || ev.attempt > MAX_ATTEMPTS || isNaN(at)) continue;
      const a = attempt(attempts, ev.attempt);
      if (ev.type === "task.retrying") {
        const before = attempts[ev.attempt - 2];
        if (before && before.ended == null) { before.ended = at; before.end = "retried"; }
        a.queued = at;
      } else if (ev.status === "queued") a.queued = at;
      else if (ev.status === "dispatched" || (ev.status === "running" && a.claimed == null)) a.claimed = at;
      else if (TASK_TERMINAL.has(ev.status)) { a.ended = at; a.end = ev.status; a.from = ev.previous_status; }
    }
    const created = Date.parse(run.created_at);
    for (const attempts of byTask.values()) {
      const first = attempts[0];
      if (first && first.queued == null && (first.claimed != null || (first.ended != null && first.from !== "pending"))) first.queued = created;
    }
    return byTask;
  }

  /** A tick step of about an eighth of the span, a round number of seconds, minutes or hours. */
  function tickStep(spanMs) {
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400].map((x) => x * 1000);
    return steps.find((step) => spanMs / step <= 8) || Math.ceil(spanMs / 8 / 86400000) * 86400000;
  }

  /**
   * The timeline section: a row per task, a bar per attempt — the queued wait (dashed) apart from
   * the time from claim to end, a retry as a bar of its own — and a "now" line while the run is
   * active. update(run, events) redraws it whole (cheap: a few elements per task).
   */
  function createTimeline(onSelect) {
    const legend = h("p", { class: "legend" }, h("span", {}, h("i", { class: "queued" }), "queued"),
      h("span", {}, h("i", { class: "running" }), "claimed → end (colour: outcome)"), h("span", {}, h("i", { class: "now" }), "now"));
    const note = h("p", { class: "muted view-note", hidden: true });
    const wrap = h("div", { class: "gantt-wrap" });
    const el = h("section", { class: "panel run-view", id: "run-timeline" }, h("h2", {}, "Timeline"), legend, note, wrap);
    const LABEL_W = 190, ROW_H = 20, BAR_H = 12, AXIS_H = 22;
    let selected = null;

    function update(run, events) {
      const tasks = run.tasks || [];
      const attempts = attemptsOf(run, events);
      const now = Date.now();
      const active = !RUN_TERMINAL.has(run.status);
      const t0 = Date.parse(run.created_at);
      let t1 = active ? now : Date.parse(run.finished_at || run.updated_at);
      for (const list of attempts.values()) for (const a of list) if (a.ended != null) t1 = Math.max(t1, a.ended);
      if (isNaN(t0) || isNaN(t1)) return;
      const span = Math.max(1000, t1 - t0) * (active ? 1.06 : 1.02);   // room for the now line
      const width = Math.max(560, (wrap.clientWidth || 1000) - 4);
      const plot = width - LABEL_W - 12;
      const x = (t) => LABEL_W + Math.max(0, Math.min(plot, ((t - t0) / span) * plot));
      const height = AXIS_H + tasks.length * ROW_H + 4;
      const svg = s("svg", { class: "view", "data-timeline": "", width, height, role: "group", "aria-label": "Timeline of task attempts" });

      const step = tickStep(span);
      for (let k = 0, tick = 0; tick <= span && k < 64; k++, tick += step) {
        svg.append(s("line", { class: "grid", x1: x(t0 + tick), x2: x(t0 + tick), y1: AXIS_H - 4, y2: height }),
          s("text", { class: "tick", x: x(t0 + tick) + 3, y: 12 }, tick ? "+" + fmtDuration(tick) : "created"));
      }
      let reused = 0, unseen = 0;
      tasks.forEach((t, r) => {
        const y = AXIS_H + r * ROW_H;
        const row = s("g", { class: "gantt-row" + (t.id === selected ? " selected" : ""), "data-row": t.name, "data-task-id": t.id,
          tabindex: 0, role: "button", "aria-label": t.name + ": " + t.status },
          s("rect", { class: "band", x: 0, y, width, height: ROW_H }),
          s("text", { x: 4, y: y + 14 }, clip(t.name, 26), s("title", {}, t.name)));
        onActivate(row, () => onSelect(t.id));
        const list = attempts.get(t.id) || [];
        if (t.reused_from) reused++;
        else if (!list.length && t.started_at) unseen++;
        for (const a of list) {
          const by = y + (ROW_H - BAR_H) / 2;
          const label = t.name + " · attempt " + a.attempt;
          if (a.queued != null) {
            const until = a.claimed ?? a.ended ?? now;
            row.append(s("rect", { "data-task": t.name, "data-attempt": a.attempt, "data-phase": "queued", x: x(a.queued), y: by,
              width: Math.max(1, x(until) - x(a.queued)), height: BAR_H, rx: 2 },
              s("title", {}, label + ": queued " + fmtDuration(until - a.queued))));
          }
          if (a.claimed != null) {
            const until = a.ended ?? now;
            // An attempt that was retried lost its runner's lease: drawn as a failure.
            const tone = a.end === "retried" ? "failed" : a.end || (t.attempt === a.attempt ? t.status : "running");
            row.append(s("rect", { class: "tone-" + tone, "data-task": t.name, "data-attempt": a.attempt, "data-phase": "running",
              "data-end": a.end || "", x: x(a.claimed), y: by, width: Math.max(2, x(until) - x(a.claimed)), height: BAR_H, rx: 2 },
              s("title", {}, label + ": claimed → " + (a.end || "now") + " " + fmtDuration(until - a.claimed))));
          }
        }
        svg.append(row);
      });
      if (active) svg.append(s("line", { class: "now", "data-now": "", x1: x(now), x2: x(now), y1: AXIS_H - 6, y2: height }));
      const notes = [];
      if (run.compacted) notes.push("retention removed this run's events: no attempt can be drawn");
      else if (unseen) notes.push(unseen + " task(s) started in events not loaded yet");
      if (reused) notes.push(reused + " task(s) reused from an earlier run, not run again");
      note.hidden = !notes.length;
      note.textContent = notes.join("; ");
      wrap.replaceChildren(svg);
    }

    /** Takes the height `rows` rows will need before they are drawn, so what follows does not move. */
    function reserve(rows) {
      wrap.style.minHeight = Math.min(520, AXIS_H + rows * ROW_H + 4) + "px";
    }

    function mark(taskId) {
      selected = taskId;
      wrap.querySelectorAll(".gantt-row").forEach((row) => row.classList.toggle("selected", row.dataset.taskId === taskId));
    }

    return { el, update, reserve, mark };
  }

  /* ==== A workflow's history: its last runs' durations and outcomes ==== */

  /**
   * A bar per run, oldest left, as tall as it took (a run still going: so far), coloured by its
   * outcome, each a link to its run. `runs` as the runs list answers them (newest first).
   */
  function durationChart(runs) {
    const items = runs.slice(0, 50).reverse();
    const now = Date.now();
    const took = (r) => r.duration_ms != null ? r.duration_ms
      : r.started_at && !RUN_TERMINAL.has(r.status) ? Math.max(0, now - Date.parse(r.started_at)) : 0;
    const values = items.map(took);
    const max = Math.max(1, ...values);
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
    const SLOTS = 50, LEFT = 64, TOP = 10, H = 120, BAR = 12, GAP = 4;
    const width = LEFT + SLOTS * (BAR + GAP) + 100, height = TOP + H + 22;
    const y = (v) => TOP + H - (v / max) * H;
    const slotX = (i) => LEFT + (SLOTS - items.length + i) * (BAR + GAP);   // the newest run at the right end
    const svg = s("svg", { class: "view", "data-chart": "durations", width, height, role: "group",
      "aria-label": "Durations of the last " + items.length + " runs", "data-status": items.length ? items[items.length - 1].status : "" },
      s("line", { class: "axis", x1: LEFT - 4, x2: width, y1: TOP + H, y2: TOP + H }),
      s("text", { class: "tick", x: 0, y: TOP + 8 }, fmtDuration(max)),
      s("text", { class: "tick", x: 0, y: TOP + H }, "0"),
      s("line", { class: "grid", "data-median": median, x1: LEFT - 4, x2: width - 96, y1: y(median), y2: y(median), "stroke-dasharray": "4 3" }),
      s("text", { class: "tick", x: width - 92, y: y(median) + 4 }, "median " + fmtDuration(median)),
      s("text", { class: "tick", x: LEFT, y: height - 4 }, "← older"),
      s("text", { class: "tick", x: width - 96, y: height - 4, "text-anchor": "end" }, "newest"));
    items.forEach((r, i) => {
      const v = values[i];
      const barH = Math.max(2, (v / max) * H);
      svg.append(s("a", { href: "#/runs/" + encodeURIComponent(r.id), "aria-label": r.id + " " + r.status + " " + fmtDuration(v) },
        s("rect", { class: "tone-" + r.status, "data-run-id": r.id, "data-status": r.status, "data-duration-ms": v,
          x: slotX(i), y: TOP + H - barH, width: BAR, height: barH, rx: 2 },
          s("title", {}, r.id + "\n" + r.status + " · " + fmtDuration(v) + (r.duration_ms == null ? " so far" : "") + "\ncreated " + r.created_at))));
    });
    return svg;
  }

  return { holdText, createGraph, createTimeline, durationChart, GRAPH_NODE_LIMIT };
})();
