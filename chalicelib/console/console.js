// The Scenaria console: plain JavaScript, no framework, no build. Every call goes through
// the public API with the key the user gave, so the console can do only what the key may.
"use strict";

(() => {
  const BASE = location.pathname.replace(/\/console\/?$/, "");
  const KEY = "scenaria.apiKey";
  const REFRESH_MS = 4000;
  const NODE_COUNTERS = [["entered", "entered"], ["current", "now"], ["exited", "exited"]];
  const SEND_COUNTERS = ["sent", "delivered", "opened", "clicked"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const enc = encodeURIComponent;

  const state = {
    id: null, meta: null, timer: null, selected: null, path: null, problems: [],
    listToken: null, listAsked: 0, removeAllArmed: false, zoom: null,
  };

  // --- calling the API ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      const detail = (problem && problem.detail) || (typeof problem === "string" ? problem : "");
      super(`${status} ${(problem && problem.title) || ""}: ${detail}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  /** One call of the API with the key; JSON (or text) back, an ApiError for a 4xx/5xx. */
  async function api(method, path, body) {
    const headers = { "X-Api-Key": sessionStorage.getItem(KEY) || "" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(BASE + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get("Content-Type") || "";
    const data = response.status === 204 ? null
      : type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  /** Say what went wrong, in the words the API chose; a refused key asks for another. */
  function failed(error) {
    if (!(error instanceof ApiError)) {
      notify(`The stack did not answer: ${error.message}`, true);
      return;
    }
    const detail = error.problem.detail || error.message;
    if (error.status === 401) {
      sessionStorage.removeItem(KEY);
      notify(`The API key was refused (401): ${detail}`, true);
      showSignIn();
    } else if (error.status === 403) {
      notify(`This key may not do that (403): ${detail}`, true);
    } else if (error.status === 404) {
      notify(`Not found (404): ${detail}. It may be outside this key's groups.`, true);
    } else {
      notify(`${error.status} ${error.problem.title || "Error"}: ${detail}`, true);
    }
  }

  function notify(text, isError = false) {
    const notice = $("#notice");
    notice.textContent = text;
    notice.className = isError ? "error" : "";
    notice.setAttribute("role", isError ? "alert" : "status");
  }

  /** An element with attributes and children (strings become text, never HTML). */
  function el(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
      else if (value !== false && value !== null && value !== undefined) element.setAttribute(name, value === true ? "" : value);
    }
    element.append(...children.flat().filter((c) => c !== null && c !== undefined).map(
      (c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
    return element;
  }

  /** `2026-06-01T10:00:00Z` → `2026-06-01 10:00` (UTC, as the API gives it). */
  function moment(text) {
    return text ? String(text).replace("T", " ").replace(/:00(\.\d+)?Z$|Z$/, "") : "";
  }

  function svgElement(tag, attributes = {}, text) {
    const element = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    if (text !== undefined) element.textContent = text;
    return element;
  }

  // --- pages ----------------------------------------------------------------------------

  function show(id) {
    for (const section of ["sign-in", "list", "scenario"]) $(`#${section}`).hidden = section !== id;
    $("#sign-out").hidden = id === "sign-in";
  }

  function showSignIn() {
    stopRefresh();
    show("sign-in");
    $("#api-key").focus();
  }

  function route() {
    stopRefresh();
    if (!sessionStorage.getItem(KEY)) return showSignIn();
    const match = location.hash.match(/^#\/scenarios\/([^/]+)$/);
    if (match) return openScenario(decodeURIComponent(match[1]));
    return openList();
  }

  // --- the scenario list ----------------------------------------------------------------

  async function openList(more = false) {
    show("list");
    document.title = "Scenarios · Scenaria console";
    const form = new FormData($("#filters"));
    const query = new URLSearchParams();
    for (const name of ["status", "tag", "q"]) if (form.get(name)) query.set(name, form.get(name));
    if (more && state.listToken) query.set("next_token", state.listToken);
    const asked = ++state.listAsked;  // only the latest answer is shown, whatever comes last
    let page;
    try {
      page = await api("GET", `/scenarios?${query}`);
    } catch (error) {
      return failed(error);
    }
    if (asked !== state.listAsked) return;
    const body = $("#scenarios tbody");
    if (!more) body.replaceChildren();
    for (const s of page.scenarios) {
      body.append(el("tr", { "data-scenario": s.id },
        el("td", {}, el("a", { href: `#/scenarios/${enc(s.id)}` }, s.name || s.id)),
        el("td", {}, el("span", { class: `badge ${s.status}` }, s.status)),
        el("td", { class: "number" }, s.version),
        el("td", {}, (s.tags || []).map((tag) => el("span", { class: "tag" }, tag))),
        el("td", {}, s.group || ""),
        el("td", { class: "number", "data-profiles-in": "" }, s.profiles_in)));
    }
    if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 6 }, "No scenario matches.")));
    state.listToken = page.next_token;
    $("#more-scenarios").hidden = !page.next_token;
  }

  // --- a scenario -----------------------------------------------------------------------

  async function openScenario(id) {
    const changed = state.id !== id;
    state.id = id;
    if (changed) {
      Object.assign(state, { selected: null, path: null, problems: [], zoom: null });
      $("#period").reset();
      $("#node-panel").replaceChildren(el("p", { class: "hint" },
        "Choose a node (click it, or Tab to it and press Enter) to see the profiles now there."));
      $("#problems").replaceChildren();
      $("#sim-result").replaceChildren();
      $("#graph").replaceChildren();
    }
    show("scenario");
    try {
      await loadMeta(changed);
      await loadVersions();
      await drawGraph();
    } catch (error) {
      return failed(error);
    }
    if (!$("#view-days").hidden) drawDays();
    showClock();
    startRefresh();
  }

  async function loadMeta(resetEditor) {
    const meta = await api("GET", `/scenarios/${enc(state.id)}`);
    state.meta = meta;
    const documentFields = meta.scenario || {};
    $("#scenario-title").textContent = meta.name || meta.id;
    document.title = `${meta.name || meta.id} · Scenaria console`;
    const facts = $("#scenario-facts");
    facts.replaceChildren(
      el("span", { class: `badge ${meta.status}`, id: "status" }, meta.status), " ",
      `version ${meta.version}`,
      documentFields.group ? ` · group ${documentFields.group}` : "",
      (meta.tags || []).length ? " · " : "",
      ...(meta.tags || []).map((tag) => el("span", { class: "tag" }, tag)));
    const status = meta.status;
    const allowed = {
      activate: status === "draft" || status === "stopped",
      deactivate: status === "active",
      clone: true,
      trash: status === "draft" || status === "stopped",
      restore: status === "trashed",
    };
    for (const button of $$("[data-action]")) button.disabled = !allowed[button.dataset.action];
    $("#keep-profiles").checked = documentFields.keep_profiles_on_stop !== false;
    if (resetEditor) $("#editor").value = JSON.stringify(meta.scenario, null, 2);
  }

  async function loadVersions() {
    const select = $("#period select[name=version]");
    const chosen = select.value;
    const answer = await api("GET", `/scenarios/${enc(state.id)}/versions?limit=1000`);
    select.replaceChildren(el("option", { value: "" }, "all, summed"),
      ...answer.versions.slice().reverse().map((v) => el("option", { value: v.version },
        `version ${v.version} (${String(v.created_at).slice(0, 10)})`)));
    select.value = chosen;
  }

  /** version, from and to of the period form, as a query string. */
  function period(extra = {}) {
    const form = new FormData($("#period"));
    const query = new URLSearchParams();
    for (const name of ["version", "from", "to"]) if (form.get(name)) query.set(name, form.get(name));
    for (const [name, value] of Object.entries(extra)) query.set(name, value);
    return query.toString();
  }

  /** The server's diagram, inlined so its boxes can be chosen and its counters updated. */
  async function drawGraph() {
    const id = state.id;
    const text = await api("GET", `/scenarios/${enc(id)}/diagram.svg?${period()}`);
    if (id !== state.id) return;  // another scenario was opened meanwhile
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = document.importNode(parsed.documentElement, true);
    svg.setAttribute("role", "group");
    svg.setAttribute("aria-label", `${state.meta.name}: the graph`);
    for (const box of $$(".box", svg)) {
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "button");
      box.addEventListener("click", () => chooseBox(box));
      box.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          chooseBox(box);
        }
      });
      labelBox(box);
    }
    $("#graph").replaceChildren(svg);
    zoom(state.zoom);
    markSelected();
    markPath();
    markProblems();
    stamp();
  }

  /** Scale the graph: a factor, or null to fit it in its pane (never larger than 1). */
  function zoom(factor) {
    const svg = $("#graph svg");
    if (!svg) return;
    const width = Number(svg.getAttribute("width")), height = Number(svg.getAttribute("height"));
    const pane = $(".graph-wrap");
    const fit = Math.min(1, (pane.clientWidth - 4) / width, (pane.clientHeight - 4) / height);
    const scale = factor === null ? Math.max(0.6, fit) : Math.min(2, Math.max(0.2, factor));
    state.zoom = factor === null ? null : scale;
    state.scale = scale;
    svg.style.width = `${Math.round(width * scale)}px`;
    svg.style.height = `${Math.round(height * scale)}px`;
  }

  function labelBox(box) {
    const title = $("title", box);
    const counts = $$("[data-counter]", box).map(
      (c) => `${c.dataset.counter} ${c.textContent}`).join(", ");
    box.setAttribute("aria-label", `${title ? title.textContent : box.dataset.key}${counts ? `; ${counts}` : ""}`);
  }

  function stamp() {
    $("#refreshed").textContent = `counters at ${new Date().toLocaleTimeString()}`;
  }

  /** The counters in place, from the scenario's stats for the chosen period and version. */
  async function refreshCounters() {
    const id = state.id;
    const stats = await api("GET", `/scenarios/${enc(id)}/stats?${period()}`);
    if (id !== state.id) return;
    for (const box of $$("#graph .box[data-node]")) {
      const counts = (stats.nodes || {})[box.dataset.node] || {};
      for (const [name] of NODE_COUNTERS) setCount(box, name, counts[name]);
      if (box.dataset.channel) {
        const channel = ((counts.channels || {})[box.dataset.channel]) || {};
        for (const name of SEND_COUNTERS) setCount(box, name, channel[name]);
      }
      labelBox(box);
    }
    stamp();
  }

  function setCount(box, name, value) {
    const counter = $(`[data-counter="${name}"]`, box);
    if (counter) counter.textContent = String(value || 0);
  }

  function startRefresh() {
    stopRefresh();
    state.timer = setInterval(tick, REFRESH_MS);
  }

  function stopRefresh() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  /** Every few seconds while the page is visible: the counters and the open node's list. */
  async function tick() {
    if (document.visibilityState !== "visible" || $("#scenario").hidden || state.ticking) return;
    state.ticking = true;  // a slow answer is not asked for again before it comes
    try {
      await refreshCounters();
      if (state.selected && !state.removeAllArmed) await loadNodeProfiles();
    } catch (error) {
      failed(error);
      if (error instanceof ApiError && error.status === 401) stopRefresh();
    } finally {
      state.ticking = false;
    }
  }

  // --- the local stack's virtual clock ----------------------------------------------

  /** On a local stack with a virtual clock (`GET /local/clock` answers), show it and let
   * it be moved; anywhere else the clock stays hidden. */
  async function showClock() {
    let clock;
    try {
      clock = await api("GET", "/local/clock");
    } catch (error) {
      $("#clock").hidden = true;
      return;
    }
    $("#clock-now").textContent = `clock ${moment(clock.now)} UTC`;
    $("#clock").hidden = false;
  }

  async function advanceClock(duration) {
    for (const button of $$("#clock button")) button.disabled = true;
    try {
      await api("POST", "/local/clock", { advance: duration });
      await showClock();
      await refreshCounters();
      if (state.selected) await loadNodeProfiles();
    } catch (error) {
      failed(error);
    } finally {
      for (const button of $$("#clock button")) button.disabled = false;
    }
  }

  // --- a node's profiles ----------------------------------------------------------------

  function chooseBox(box) {
    if (!box.dataset.node) return;
    state.selected = box.dataset.node;
    state.removeAllArmed = false;
    markSelected();
    selectTab("tab-graph");
    loadNodeProfiles().catch(failed);
  }

  function markSelected() {
    for (const box of $$("#graph .box")) box.classList.toggle("selected", box.dataset.node === state.selected);
  }

  async function loadNodeProfiles() {
    const node = state.selected;
    const answer = await api("GET", `/scenarios/${enc(state.id)}/nodes/${enc(node)}/profiles?limit=100`);
    if (node !== state.selected) return;
    const rows = answer.profiles.map((p) => el("tr", { "data-profile": p.profile_id },
      el("td", {}, p.profile_id),
      el("td", {}, el("time", { datetime: p.entered_at || "" }, moment(p.entered_at)), el("br"),
        p.wake_at ? el("time", { datetime: p.wake_at }, moment(p.wake_at)) : "—"),
      el("td", {}, el("button", {
        type: "button", class: "danger", "aria-label": `Remove ${p.profile_id} from the scenario`,
        onclick: () => removeProfile(p.profile_id),
      }, "Remove"))));
    const removeAll = el("button", {
      type: "button", class: "danger", id: "remove-all", disabled: !rows.length,
      onclick: () => removeAllAtNode(removeAll, answer.profiles.length),
    }, state.removeAllArmed ? `Really remove all ${answer.profiles.length}?` : "Remove all at this node");
    $("#node-panel").replaceChildren(...[
      el("h2", {}, "Profiles at ", el("code", {}, node)),
      rows.length
        ? el("div", { class: "table-wrap" }, el("table", { id: "node-profiles" },
          el("thead", {}, el("tr", {}, ["Profile", "Entered, wakes (UTC)", ""].map(
            (h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows)))
        : el("p", { class: "hint", id: "no-profiles" }, "No profile is here now."),
      answer.next_token ? el("p", { class: "hint" }, "Only the first 100 are listed.") : null,
      el("div", { class: "row" }, removeAll)].filter(Boolean));
  }

  async function removeProfile(profileId) {
    try {
      const answer = await api("DELETE", `/scenarios/${enc(state.id)}/profiles/${enc(profileId)}`);
      notify(`Removed ${profileId} from the scenario (${answer.removed} journey${answer.removed === 1 ? "" : "s"}).`);
      await Promise.all([loadNodeProfiles(), refreshCounters()]);
    } catch (error) {
      failed(error);
    }
  }

  async function removeAllAtNode(button, count) {
    if (!state.removeAllArmed) {  // a second press confirms: no modal dialog to trap focus
      state.removeAllArmed = true;
      button.textContent = `Really remove all ${count}?`;
      return;
    }
    state.removeAllArmed = false;
    try {
      const answer = await api("DELETE", `/scenarios/${enc(state.id)}/nodes/${enc(state.selected)}/profiles`);
      notify(`Removing ${answer.removed} profile(s) from ${state.selected}.`);
      await Promise.all([loadNodeProfiles(), refreshCounters()]);
    } catch (error) {
      failed(error);
    }
  }

  // --- lifecycle ------------------------------------------------------------------------

  async function lifecycle(action) {
    const id = enc(state.id);
    try {
      if (action === "activate") {
        const answer = await api("POST", `/scenarios/${id}/activate`);
        notify(`Active, version ${answer.version}.`);
      } else if (action === "deactivate") {
        await api("POST", `/scenarios/${id}/deactivate`, { keep_profiles: $("#keep-profiles").checked });
        notify($("#keep-profiles").checked ? "Stopped; its profiles sleep where they are." : "Stopped; its profiles left.");
      } else if (action === "clone") {
        const copy = await api("POST", `/scenarios/${id}/clone`);
        notify(`Cloned as a draft: ${copy.name}.`);
        location.hash = `#/scenarios/${enc(copy.id)}`;
        return;
      } else if (action === "trash") {
        await api("DELETE", `/scenarios/${id}`);
        notify("Trashed; Restore brings it back.");
      } else if (action === "restore") {
        await api("POST", `/scenarios/${id}/restore`);
        notify("Restored.");
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        showProblems(error.problem.problems || [], "It cannot be activated:");
        selectTab("tab-edit");
      }
      return failed(error);
    }
    await openScenario(state.id);
  }

  // --- editing --------------------------------------------------------------------------

  async function save() {
    let document;
    try {
      document = JSON.parse($("#editor").value);
    } catch (error) {
      showProblems([{ path: "$", message: `not JSON: ${error.message}` }], "Not saved:");
      return notify("Not saved: the text is not JSON.", true);
    }
    try {
      const before = state.meta.version;
      const saved = await api("PUT", `/scenarios/${enc(state.id)}`, document);
      const problems = saved.problems || [];
      showProblems(problems, problems.length ? "Saved. These keep it from being activated:" : "");
      notify(saved.status === "active" && saved.version !== before
        ? `Saved as version ${saved.version}.` : "Saved.");
      await loadMeta(true);
      await loadVersions();
      await drawGraph();
    } catch (error) {
      if (error instanceof ApiError && (error.status === 422 || error.status === 400)) {
        showProblems(error.problem.problems || [{ path: "$", message: error.problem.detail }], "Not saved:");
      }
      failed(error);
    }
  }

  function showProblems(problems, heading) {
    state.problems = problems;
    const list = el("ul", { class: "problems" }, problems.map((p) => el("li", { "data-path": p.path },
      el("button", { type: "button", onclick: () => focusProblem(p) }, el("code", {}, p.path)),
      ` ${p.message}`)));
    $("#problems").replaceChildren(...(problems.length ? [el("h2", {}, heading), list] : []));
    markProblems();
  }

  /** The box a problem's JSON path is about: `$.nodes.<id>…`, `$.triggers[i]…`, `$.entry`. */
  function boxOfProblem(path) {
    let best = null;
    for (const box of $$("#graph .box")) {
      const id = box.dataset.node ?? box.dataset.trigger;
      const prefixes = box.dataset.node !== undefined
        ? [`$.nodes.${id}`, `$.nodes['${id}']`]
        : triggerPrefixes(id);
      for (const prefix of prefixes) {
        const rest = path.slice(prefix.length);
        if (path.startsWith(prefix) && (rest === "" || rest[0] === "." || rest[0] === "[")) {
          if (!best || prefix.length > best.length) best = { box, length: prefix.length };
        }
      }
    }
    if (!best && path.startsWith("$.entry")) {
      const entry = (state.meta.scenario || {}).entry;
      return $$("#graph .box[data-node]").find((b) => b.dataset.node === entry) || null;
    }
    return best && best.box;
  }

  function triggerPrefixes(id) {
    const triggers = (state.meta.scenario || {}).triggers || [];
    return triggers.map((t, i) => (t && t.id === id ? `$.triggers[${i}]` : null)).filter(Boolean);
  }

  function markProblems() {
    for (const box of $$("#graph .box")) box.classList.remove("problem");
    for (const problem of state.problems) {
      const box = boxOfProblem(problem.path);
      if (box) box.classList.add("problem");
    }
  }

  /** Show a problem: its node on the graph, and its place in the JSON selected. */
  function focusProblem(problem) {
    const box = boxOfProblem(problem.path);
    if (box) box.scrollIntoView({ block: "center", inline: "center" });
    const editor = $("#editor");
    const found = locate(editor.value, problem.path);
    if (!found) return;
    editor.focus();
    editor.setSelectionRange(found[0], found[1]);
    const line = editor.value.slice(0, found[0]).split("\n").length - 1;
    editor.scrollTop = Math.max(0, line * parseFloat(getComputedStyle(editor).lineHeight || "18") - 60);
  }

  /** [start, end) of the value a JSON path (`$.nodes.a.branches[0]`, `$.nodes['a.b']`) names
   * in a JSON text, or of the deepest part of it that exists; null when the text is not JSON. */
  function locate(text, path) {
    const segments = [];
    const pattern = /\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]/g;
    for (const m of path.slice(1).matchAll(pattern)) {
      segments.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3] ?? m[4]).replace(/\\(.)/g, "$1"));
    }
    let i = 0;
    const space = () => { while (i < text.length && /\s/.test(text[i])) i++; };
    const string = () => {
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      return JSON.parse(text.slice(start, i));
    };
    const skip = () => {
      space();
      if (text[i] === '"') return string();
      if (text[i] !== "{" && text[i] !== "[") {
        while (i < text.length && !/[,\]}\s]/.test(text[i])) i++;
        return undefined;
      }
      let depth = 0;
      do {
        if (text[i] === '"') { string(); continue; }
        if (text[i] === "{" || text[i] === "[") depth++;
        if (text[i] === "}" || text[i] === "]") depth--;
        i++;
      } while (depth > 0 && i < text.length);
      return undefined;
    };
    const find = (depth) => {
      space();
      const start = i;
      if (depth === segments.length) { skip(); return [start, i]; }
      const want = segments[depth];
      const open = text[i];
      if (open !== "{" && open !== "[") { skip(); return [start, i]; }
      i++;
      for (let index = 0; ; index++) {
        space();
        if (text[i] === "}" || text[i] === "]" || i >= text.length) return [start, start + 1];
        let key = index;
        if (open === "{") {
          key = string();
          space();
          i++;  // the colon
        }
        if (key === want) return find(depth + 1);
        skip();
        space();
        if (text[i] === ",") i++;
      }
    };
    try {
      JSON.parse(text);
      return find(0);
    } catch (error) {
      return null;
    }
  }

  // --- simulating -----------------------------------------------------------------------

  async function simulate(event) {
    event.preventDefault();
    let profile, events;
    try {
      profile = JSON.parse($("#sim-profile").value);
      events = JSON.parse($("#sim-events").value || "[]");
    } catch (error) {
      return notify(`The profile and the timeline must be JSON: ${error.message}`, true);
    }
    const body = { scenario_id: state.id, profile, events };
    if ($("#sim-until").value.trim()) body.until = $("#sim-until").value.trim();
    let result;
    try {
      result = await api("POST", "/scenarios/simulate", body);
    } catch (error) {
      return failed(error);
    }
    state.path = result.path.map((step) => step.node);
    markPath();
    $("#sim-result").replaceChildren(
      el("h2", {}, "Path"),
      el("p", { id: "sim-status" }, `Ends ${result.status}${result.reason ? ` (${result.reason})` : ""}.`),
      el("ol", { id: "sim-path" }, result.path.map((step) => el("li", {},
        el("code", {}, step.node), ` ${step.outcome || ""} `, el("span", { class: "hint" }, step.at)))),
      el("h2", {}, "Sends"),
      result.sends.length
        ? el("div", { class: "table-wrap" }, el("table", { id: "sim-sends" },
          el("thead", {}, el("tr", {}, ["At", "Node", "Channel", "To", "Subject or text"].map(
            (h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, result.sends.map((s) => el("tr", {},
            el("td", {}, s.at), el("td", {}, s.node), el("td", {}, s.channel),
            el("td", {}, s.to || ""), el("td", {}, s.subject || s.body || ""))))))
        : el("p", { class: "hint" }, "Nothing would be sent."));
  }

  /** The simulated path on the graph: its boxes and the arrows between them. */
  function markPath() {
    const nodes = new Set(state.path || []);
    for (const box of $$("#graph .box")) box.classList.toggle("on-path", nodes.has(box.dataset.node));
    const steps = new Set();
    const path = state.path || [];
    for (let i = 1; i < path.length; i++) steps.add(`node/${path[i - 1]}>node/${path[i]}`);
    for (const arrow of $$("#graph .arrow")) {
      const { source, target } = arrow.dataset;
      const first = path.length && target === `node/${path[0]}` && !source.startsWith("node/");
      arrow.classList.toggle("on-path", steps.has(`${source}>${target}`) || Boolean(first));
    }
  }

  // --- statistics by day ----------------------------------------------------------------

  async function drawDays() {
    let stats;
    try {
      stats = await api("GET", `/scenarios/${enc(state.id)}/stats?${period({ by: "day" })}`);
    } catch (error) {
      return failed(error);
    }
    const days = stats.days || [];
    const series = [["entered", "#2563eb"], ["completed", "#16a34a"]];
    if (days.some((d) => "conversions" in d)) series.push(["conversions", "#d97706"]);
    const target = $("#days");
    if (!days.length) {
      target.replaceChildren(el("p", { class: "hint" }, "Nothing was counted in this period."));
      return;
    }
    const width = 360, height = 180, left = 32, bottom = 24;
    const top = Math.max(1, ...days.flatMap((d) => series.map(([name]) => d[name] || 0)));
    const slot = (width - left) / days.length;
    const bar = Math.max(1, (slot - 2) / series.length);
    const chart = svgElement("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "days-title",
    });
    chart.append(svgElement("title", { id: "days-title" }, "Profiles per day"));
    for (const tick of new Set([0, Math.round(top / 2), top])) {
      const y = height - bottom - (tick / top) * (height - bottom - 10);
      chart.append(svgElement("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#e5e7eb" }));
      chart.append(svgElement("text", { x: left - 4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#4b5563" },
        String(tick)));
    }
    days.forEach((day, i) => {
      series.forEach(([name, colour], j) => {
        const value = day[name] || 0;
        const h = (value / top) * (height - bottom - 10);
        const rect = svgElement("rect", {
          x: left + i * slot + 1 + j * bar, y: height - bottom - h, width: bar, height: h, fill: colour,
        });
        rect.append(svgElement("title", {}, `${day.day}: ${value} ${name}`));
        chart.append(rect);
      });
      if (days.length <= 10 || i % Math.ceil(days.length / 7) === 0) {
        chart.append(svgElement("text", {
          x: left + i * slot + slot / 2, y: height - 8, "text-anchor": "middle", "font-size": 10, fill: "#4b5563",
        }, day.day.slice(5)));
      }
    });
    const table = el("table", { id: "days-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Day"),
        series.map(([name]) => el("th", { scope: "col", class: "number" }, name)))),
      el("tbody", {}, days.map((d) => el("tr", {}, el("td", {}, d.day),
        series.map(([name]) => el("td", { class: "number" }, d[name] || 0))))));
    target.replaceChildren(
      el("h2", {}, "Profiles per day"),
      el("div", { class: "legend" }, series.map(([name, colour]) => el("span", { style: `--swatch: ${colour}` }, name))),
      el("div", { class: "chart" }, chart),
      el("details", {}, el("summary", {}, "The numbers"), el("div", { class: "table-wrap" }, table)));
  }

  // --- tabs -----------------------------------------------------------------------------

  function selectTab(id) {
    for (const tab of $$("[role=tab]")) {
      const selected = tab.id === id;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(`#${tab.getAttribute("aria-controls")}`).hidden = !selected;
    }
    if (id === "tab-days") drawDays();
  }

  // --- wiring ---------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, $("#api-key").value.trim());
      $("#api-key").value = "";
      notify("");
      route();
    });
    $("#sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      notify("The key is forgotten.");
      showSignIn();
    });
    $("#filters").addEventListener("submit", (event) => {
      event.preventDefault();
      openList();
    });
    $("#more-scenarios").addEventListener("click", () => openList(true));
    $("#period").addEventListener("submit", (event) => {
      event.preventDefault();
      drawGraph().catch(failed);
      if (!$("#view-days").hidden) drawDays();
    });
    for (const button of $$("[data-action]")) button.addEventListener("click", () => lifecycle(button.dataset.action));
    $("#save").addEventListener("click", save);
    $("#revert").addEventListener("click", () => {
      $("#editor").value = JSON.stringify(state.meta.scenario, null, 2);
      showProblems([], "");
    });
    $("#editor").addEventListener("keydown", (event) => {
      if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
        // Two spaces, like the document; Escape first lets Tab leave the editor.
        if (state.editorEscaped) return;
        event.preventDefault();
        document.execCommand("insertText", false, "  ");
      }
      state.editorEscaped = event.key === "Escape";
    });
    for (const button of $$("#clock button")) {
      button.addEventListener("click", () => advanceClock(button.dataset.advance));
    }
    $("#zoom-in").addEventListener("click", () => zoom((state.scale || 1) * 1.25));
    $("#zoom-out").addEventListener("click", () => zoom((state.scale || 1) / 1.25));
    $("#zoom-fit").addEventListener("click", () => zoom(null));
    $("#simulate-form").addEventListener("submit", simulate);
    $("#sim-clear").addEventListener("click", () => {
      state.path = null;
      markPath();
      $("#sim-result").replaceChildren();
    });
    $("#sim-profile").value = JSON.stringify({
      profile_id: "ada", first_name: "Ada", email: "ada@example.com", phone: "+14155550100",
      consents: { email: true, sms: true },
    }, null, 2);
    $("#sim-events").value = "[]";
    const tabs = $$("[role=tab]");
    for (const tab of tabs) {
      tab.addEventListener("click", () => selectTab(tab.id));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
        selectTab(next.id);
        next.focus();
      });
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && state.timer) tick();
    });
    window.addEventListener("hashchange", route);
    route();
  });
})();
