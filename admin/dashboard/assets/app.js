// Meridian dashboard: reads /api/v1/status, follows /api/v1/events, and
// draws the cluster. Plain ES module, no dependencies; every value from the
// API reaches the page as text (textContent), never as markup.
import * as world from "./world.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

// The events that change what the page shows.
const EVENT_TYPES = ["verdict", "override.set", "override.cleared", "override.expired", "member", "isolation", "self_distrust", "config"];
const CONTINENTS = { AF: "Africa", AN: "Antarctica", AS: "Asia", EU: "Europe", NA: "North America", OC: "Oceania", SA: "South America" };
// Region fills on the map: a colour-blind-safe palette (Okabe–Ito), light
// enough for the dark region labels drawn over it.
const PALETTE = ["#56b4e9", "#e69f00", "#009e73", "#cc79a7", "#f0e442", "#0072b2", "#d55e00", "#999999"];
// Verdict colours, as in style.css (SVG attributes cannot use its variables).
const VERDICT = { up: "#1a7f37", degraded: "#9a6700", down: "#cf222e", none: "#57606a" };
const LAND = "#d8dee4";

const state = {
  status: null,      // the last status
  rates: {},         // region → answers per second, from the last two statuses
  prev: null,        // the status before
  events: [],        // the last hour, oldest first
  lastSeq: 0,
  pool: localStorage.getItem("meridian.pool") || "",
  es: null,
  operate: false,    // the session may change things
  pending: null,     // the change last previewed, to apply
  lostSince: null,   // when the events stream was lost; null while live
  timer: null,
  refresh: null,
};

// h makes an element: h("td", {class: "num"}, "text", child...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function verdictBadge(v) {
  const cls = ["up", "degraded", "down"].includes(v) ? v : "none";
  return h("span", { class: "v " + cls, "data-verdict": v || "none" }, (v || "none").toUpperCase());
}

function ago(t, now) {
  if (!t) return "";
  const s = Math.max(0, Math.round((now - new Date(t)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

async function api(path, opts = {}) {
  const resp = await fetch(path, { credentials: "same-origin", ...opts, headers: { "Accept": "application/json", ...(opts.headers || {}) } });
  if (resp.status === 401) {
    signedOut();
    throw new Error("signed out");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.detail || body.error || resp.statusText);
  return body;
}

// ---- sign-in ----------------------------------------------------------

function signedOut(msg) {
  stop();
  $("app").hidden = true;
  $("signout").hidden = true;
  $("pool-label").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = msg || "";
  setConn("Not connected", "");
  $("token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  const resp = await fetch("/api/v1/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
  });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    $("signin-error").textContent = resp.status === 401 ? "That token is not valid." : (body.detail || resp.statusText);
    return;
  }
  start(await resp.json());
}

async function signOut() {
  await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" }).catch(() => {});
  signedOut("Signed out.");
}

function start(session) {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  $("pool-label").hidden = false;
  $("who").textContent = "as " + session.token_id + " (" + session.role + ")";
  state.operate = session.role === "operate";
  $("change").hidden = !state.operate;
  loadStatus();
  connect();
  state.timer = setInterval(loadStatus, 5000);
}

function stop() {
  if (state.es) state.es.close();
  state.es = null;
  clearInterval(state.timer);
  clearTimeout(state.refresh);
}

// ---- live data ----------------------------------------------------------

function setConn(text, cls) {
  const el = $("conn");
  el.textContent = text;
  el.className = "pill " + cls;
  const lost = cls === "lost";
  if (lost && !state.lostSince) state.lostSince = new Date();
  if (!lost) state.lostSince = null;
  if (state.status) renderWarnings(state.status);
}

// connect follows the events stream; the browser reconnects by itself
// (sending Last-Event-ID) after a dropped connection, and the page starts a
// new stream, from the last event it has, when the browser gives up.
function connect() {
  const since = state.lastSeq ? "since_seq=" + state.lastSeq : "history=1h";
  const es = new EventSource("/api/v1/events?" + since);
  state.es = es;
  es.onopen = () => { setConn("Live", "live"); loadStatus(); };
  es.onerror = () => {
    setConn("Connection lost — reconnecting…", "lost");
    if (es.readyState === EventSource.CLOSED) {
      state.es = null;
      // A closed stream may mean the session ended: ask, then retry.
      setTimeout(() => api("/api/v1/session").then(() => { if (!state.es) connect(); }).catch(() => {}), 2000);
    }
  };
  for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
}

function onEvent(msg) {
  const ev = JSON.parse(msg.data);
  if (ev.seq <= state.lastSeq && ev.seq !== 1) return;
  if (ev.seq === 1 && state.lastSeq > 1) state.events = []; // the node restarted
  state.lastSeq = ev.seq;
  state.events.push(ev);
  const hour = Date.now() - 3600e3;
  while (state.events.length && new Date(state.events[0].time) < hour) state.events.shift();
  renderTimeline();
  // Coalesce a burst of events into one status read.
  clearTimeout(state.refresh);
  state.refresh = setTimeout(loadStatus, 150);
}

async function loadStatus() {
  let st;
  try {
    st = await api("/api/v1/status");
  } catch (e) {
    return;
  }
  const prev = state.status;
  if (prev && st.time > prev.time) {
    const dt = (new Date(st.time) - new Date(prev.time)) / 1000;
    const rates = {};
    for (const [r, n] of Object.entries(st.answers || {})) rates[r] = Math.max(0, (n - ((prev.answers || {})[r] || 0)) / dt);
    state.rates = rates;
  }
  state.status = st;
  render();
}

// ---- rendering ----------------------------------------------------------

function currentPool(st) {
  const names = st.pools.map((p) => p.pool);
  if (!names.includes(state.pool)) state.pool = names[0] || "";
  return st.pools.find((p) => p.pool === state.pool);
}

function regionColours(st) {
  const c = {};
  st.regions.forEach((r, i) => { c[r.name] = PALETTE[i % PALETTE.length]; });
  return c;
}

function render() {
  const st = state.status;
  if (!st) return;
  $("node").textContent = "node " + st.node;
  renderPoolSelect(st);
  const pool = currentPool(st);
  renderWarnings(st);
  renderMap(st, pool);
  renderRegions(st, pool);
  renderMatrix(st, pool);
  renderOverrides(st);
  renderChangeForm(st);
  renderPools(st);
  renderMembers(st);
}

function renderPoolSelect(st) {
  const sel = $("pool");
  const names = st.pools.map((p) => p.pool);
  if (sel.options.length !== names.length || names.some((n, i) => sel.options[i].value !== n)) {
    sel.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  }
  sel.value = state.pool || names[0] || "";
}

function renderWarnings(st) {
  const out = [];
  if (state.lostSince) out.push(h("div", { class: "bad", id: "lost" }, "Lost the connection to node " + st.node + " at " + clock(state.lostSince) +
    ": reconnecting. Until it is back, what this page shows may be out of date."));
  if (st.isolated) out.push(h("div", { class: "bad" }, "This node is isolated: it reaches less than half of the cluster and serves the last agreed view, frozen."));
  if (st.self_distrust) out.push(h("div", { class: "bad" }, "This node distrusts its own probes: it sees every region down while its peers do not, so its votes are left out."));
  if (!st.config_agreement) {
    const hashes = new Set(st.members.filter((m) => m.state === "alive").map((m) => m.config_hash));
    out.push(h("div", {}, "Config drift: live members serve " + hashes.size + " different zone configs. Compare the config hashes below."));
  }
  const dead = st.members.filter((m) => m.state !== "alive");
  if (dead.length) out.push(h("div", {}, "Members not alive: " + dead.map((m) => m.name + " (" + m.state + ")").join(", ")));
  $("warnings").replaceChildren(...out);
}

function renderMap(st, pool) {
  const colours = regionColours(st);
  const answering = (pool && pool.answering) || {};
  $("map-pool").textContent = pool ? "— " + pool.pool : "";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${world.width} ${world.height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "World map: each continent is shaded by the region that answers its clients; each region is a marker with its verdict.");
  for (const [code, d] of Object.entries(world.continents)) {
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", d);
    p.setAttribute("class", "land");
    const region = answering[code];
    p.setAttribute("fill", region && colours[region] ? colours[region] : LAND);
    p.dataset.continent = code;
    if (region) p.dataset.region = region;
    const title = document.createElementNS(SVG, "title");
    title.textContent = (CONTINENTS[code] || code) + (region ? ": answered by " + region : "");
    p.append(title);
    svg.append(p);
  }
  const verdicts = {};
  for (const r of (pool && pool.regions) || []) verdicts[r.region] = r;
  for (const r of st.regions) {
    const [x, y] = world.project(r.lat, r.lon);
    const rs = verdicts[r.name];
    const v = rs ? rs.verdict : "none";
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "marker");
    g.dataset.region = r.name;
    g.dataset.verdict = v;
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", 9);
    c.setAttribute("fill", VERDICT[v] || VERDICT.none);
    const t = document.createElementNS(SVG, "text");
    // Labels near the right edge go to the left of their marker.
    const left = x > world.width * 0.75;
    t.setAttribute("x", left ? x - 13 : x + 13); t.setAttribute("y", y + 5);
    if (left) t.setAttribute("text-anchor", "end");
    t.textContent = r.name + " · " + (rs ? v.toUpperCase() + (rs.override ? " (" + rs.override + ")" : "") : "not in pool");
    g.append(c, t);
    svg.append(g);
  }
  $("map").replaceChildren(svg);
  // The same as text, for people who do not read colours or maps.
  const items = Object.keys(CONTINENTS).filter((c) => answering[c]).map((c) =>
    h("li", { "data-continent": c }, swatch(colours[answering[c]]), CONTINENTS[c] + " → " + answering[c]));
  $("routing").replaceChildren(...items);
  const unplaced = Object.keys(CONTINENTS).filter((c) => c !== "AN" && !answering[c]).map((c) => CONTINENTS[c]);
  $("map-note").textContent = unplaced.length ? "Grey: no GeoIP locations in " + unplaced.join(", ") + " (the database places no clients there)." : "";
}

// swatch is a small square of colour: an SVG, since the page's content
// policy allows no inline styles.
function swatch(colour) {
  const sw = document.createElementNS(SVG, "svg");
  sw.setAttribute("class", "swatch");
  sw.setAttribute("viewBox", "0 0 1 1");
  sw.setAttribute("aria-hidden", "true");
  const rect = document.createElementNS(SVG, "rect");
  rect.setAttribute("width", 1);
  rect.setAttribute("height", 1);
  rect.setAttribute("fill", colour || LAND);
  sw.append(rect);
  return sw;
}

function renderRegions(st, pool) {
  const rows = ((pool && pool.regions) || []).map((r) =>
    h("tr", { "data-region": r.region },
      h("th", { scope: "row" }, r.region),
      h("td", {}, verdictBadge(r.verdict), r.pending ? " (pending)" : "", r.reason ? h("span", { class: "reason clamp", title: r.reason }, r.reason) : ""),
      h("td", {}, r.override ? h("span", { class: "tag" }, r.override) : "—"),
      h("td", { class: "num" }, rate(state.rates[r.region] || 0))));
  $("regions").tBodies[0].replaceChildren(...rows);
}

function rate(x) {
  return x >= 10 ? String(Math.round(x)) : x.toFixed(1);
}

function renderMatrix(st, pool) {
  const now = new Date(st.time);
  const observers = [...new Set(((pool && pool.regions) || []).flatMap((r) => r.observers.map((o) => o.node)))].sort();
  const head = h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Region"), observers.map((o) => h("th", { scope: "col" }, o)), h("th", { scope: "col" }, "Quorum")));
  const body = h("tbody", {}, ((pool && pool.regions) || []).map((r) => {
    const byNode = Object.fromEntries(r.observers.map((o) => [o.node, o]));
    return h("tr", { "data-region": r.region },
      h("th", { scope: "row" }, r.region),
      observers.map((name) => {
        const o = byNode[name];
        if (!o) return h("td", { class: "muted" }, "not observing");
        return h("td", { "data-node": name, "data-verdict": o.verdict }, verdictBadge(o.verdict),
          h("span", { class: "reason clamp", title: o.reason || "" }, ago(o.checked, now) + (o.lagging ? " · not voting" : "") + (o.reason ? " · " + o.reason : "")));
      }),
      h("td", {}, verdictBadge(r.verdict)));
  }));
  $("matrix").replaceChildren(head, body);
}

function renderOverrides(st) {
  const t = $("overrides");
  if (!st.overrides.length) {
    t.replaceChildren(h("tbody", {}, h("tr", {}, h("td", { class: "muted" }, "None: probes decide."))));
    return;
  }
  const cols = ["Override and why", "Who, when"];
  if (state.operate) cols.push("");
  const head = h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c))));
  const body = h("tbody", {}, st.overrides.map((o) => h("tr", { "data-override": o.id },
    h("td", {}, h("strong", {}, o.action === "pin" ? "pin " + o.pool + " → " + o.region : "drain " + o.region + (o.pool === "*" ? " everywhere" : " in " + o.pool)),
      h("span", { class: "reason" }, o.why)),
    h("td", {}, o.who + (o.origin ? " on " + o.origin : ""),
      h("span", { class: "reason" }, "since " + clock(o.when) + (o.expires_at ? ", until " + clock(o.expires_at) : ", until cleared"))),
    state.operate ? h("td", {}, clearButton(o)) : null)));
  t.replaceChildren(head, body);
}

function renderPools(st) {
  const head = h("thead", {}, h("tr", {}, ["Pool", "Policy", "Regions", "Answering"].map((c) => h("th", { scope: "col" }, c))));
  const body = h("tbody", {}, st.pools.map((p) => h("tr", { "data-pool": p.pool },
    h("th", { scope: "row" }, p.pool),
    h("td", {}, p.policy),
    h("td", {}, p.regions.map((r) => h("div", {}, r.region + " ", verdictBadge(r.verdict), r.override ? " " : "", r.override ? h("span", { class: "tag" }, r.override) : ""))),
    h("td", {}, Object.keys(CONTINENTS).filter((c) => p.answering[c]).map((c) => h("div", {}, c + " → " + p.answering[c]))))));
  $("pools").replaceChildren(head, body);
}

function renderMembers(st) {
  const head = h("thead", {}, h("tr", {}, ["Node", "Region", "State", "Version", "Config"].map((c) => h("th", { scope: "col" }, c))));
  const mine = (st.members.find((m) => m.name === st.node) || {}).config_hash;
  const body = h("tbody", {}, st.members.map((m) => h("tr", { "data-member": m.name },
    h("th", { scope: "row" }, m.name, m.name === st.node ? h("span", { class: "reason" }, "this node") : ""),
    h("td", {}, m.region || "—"),
    h("td", {}, m.state === "alive" ? m.state : h("strong", {}, m.state)),
    h("td", {}, m.version || "—"),
    h("td", {}, h("code", {}, m.config_hash || "—"), m.config_hash && mine && m.config_hash !== mine ? h("strong", {}, " differs") : ""))));
  $("members").replaceChildren(head, body);
}

function describe(ev) {
  const o = ev.override;
  switch (ev.type) {
    case "verdict":
      return ev.region + " " + ev.from + " → " + ev.to + (ev.pool ? " in " + ev.pool : ev.detail ? " (" + ev.detail + ")" : "") + (ev.reason ? ": " + ev.reason : "");
    case "override.set":
      return (o.action === "pin" ? "Pinned " + o.pool + " to " + o.region : "Drained " + o.region + (o.pool === "*" ? " everywhere" : " in " + o.pool)) + " by " + o.who + ": " + o.why;
    case "override.cleared":
      return "Cleared " + o.id + (ev.who ? " by " + ev.who : "") + (ev.why ? ": " + ev.why : "");
    case "override.expired":
      return "Expired " + o.id + " (set by " + o.who + ")";
    case "member":
      return "Member " + ev.member + ": " + (ev.from || "new") + " → " + ev.to;
    case "isolation":
      return ev.to === "isolated" ? "This node is isolated" : "This node rejoined the cluster";
    case "self_distrust":
      return ev.to === "distrusted" ? "This node distrusts its own probes" : "This node trusts its probes again";
    case "config":
      return "Config " + ev.to + (ev.detail ? ": " + ev.detail : "");
  }
  return ev.type;
}

function renderTimeline() {
  const items = state.events.slice(-200).reverse().map((ev) =>
    h("li", { "data-type": ev.type }, h("time", { datetime: ev.time }, clock(ev.time)), h("span", {}, describe(ev))));
  if (!items.length) items.push(h("li", { class: "muted" }, h("span", {}, ""), h("span", {}, "Nothing has changed in the last hour.")));
  $("timeline").replaceChildren(...items);
}

// ---- start ----------------------------------------------------------------

$("signin-form").addEventListener("submit", signIn);
$("signout").addEventListener("click", signOut);
$("pool").addEventListener("change", (e) => {
  state.pool = e.target.value;
  localStorage.setItem("meridian.pool", state.pool);
  render();
});
fetch("/api/v1/session", { credentials: "same-origin" }).then(async (resp) => {
  if (resp.ok) start(await resp.json());
  else signedOut();
}).catch(() => signedOut("The node does not answer."));
renderTimeline();

// ---- operator controls (operate role only) ------------------------------

// clearButton asks for a reason, then clears the override.
function clearButton(o) {
  const b = h("button", { type: "button", "data-clear": o.id, "aria-label": "Clear " + o.id }, "Clear");
  b.addEventListener("click", async () => {
    const why = window.prompt("Why clear " + o.id + "? (audited)");
    if (!why || !why.trim()) return;
    try {
      await api("/api/v1/overrides/" + encodeURIComponent(o.id) + "?reason=" + encodeURIComponent(why.trim()), { method: "DELETE" });
      loadStatus();
    } catch (e) {
      window.alert("Not cleared: " + e.message);
    }
  });
  return b;
}

function fillSelect(sel, values, labels) {
  const cur = sel.value;
  if (sel.options.length !== values.length || values.some((v, i) => sel.options[i].value !== v)) {
    sel.replaceChildren(...values.map((v, i) => h("option", { value: v }, labels ? labels[i] : v)));
  }
  if (values.includes(cur)) sel.value = cur;
}

function renderChangeForm(st) {
  if (!state.operate) return;
  const drain = $("c-action").value === "drain";
  const pools = st.pools.map((p) => p.pool);
  fillSelect($("c-pool"), drain ? ["*", ...pools] : pools, drain ? ["every pool", ...pools] : pools);
  const pool = st.pools.find((p) => p.pool === $("c-pool").value);
  const regions = pool ? pool.regions.map((r) => r.region) : st.regions.map((r) => r.name);
  fillSelect($("c-region"), regions);
}

function changeRequest(dry) {
  const body = {
    action: $("c-action").value, pool: $("c-pool").value, region: $("c-region").value,
    reason: $("c-reason").value.trim(), dry_run: dry,
  };
  if ($("c-expires").value) body.expires_in = $("c-expires").value;
  if (!dry && $("c-force").checked) body.force = true;
  return body;
}

async function preview(ev) {
  ev.preventDefault();
  const out = $("c-result");
  $("c-apply").hidden = true;
  $("c-force-label").hidden = true;
  $("c-force").checked = false;
  const body = changeRequest(true);
  if (!body.reason) {
    out.replaceChildren(h("span", { class: "bad" }, "Say why: the reason is required and audited."));
    return;
  }
  try {
    const p = await api("/api/v1/overrides", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const moves = p.moves.length ? h("ul", { id: "c-moves" }, p.moves.map((m) =>
      h("li", {}, m.pool + " " + (m.scope === "unplaced" ? "unplaced clients" : m.code) + ": " + m.from + " → " + m.to))) :
      h("p", {}, "No client would move.");
    out.replaceChildren(h("p", {}, "Preview of " + p.override.id + " (nothing changed yet):"), moves,
      p.conflict ? h("p", { class: "bad", id: "c-conflict" }, "A safety rail objects: " + p.conflict) : "");
    state.pending = body;
    $("c-apply").hidden = false;
    $("c-force-label").hidden = !p.conflict;
  } catch (e) {
    out.replaceChildren(h("span", { class: "bad" }, "Preview refused: " + e.message));
  }
}

async function apply() {
  if (!state.pending) return;
  const body = { ...changeRequest(false), action: state.pending.action, pool: state.pending.pool, region: state.pending.region };
  try {
    const r = await api("/api/v1/overrides", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("c-result").replaceChildren(h("p", { id: "c-done" }, "Applied: " + r.override.id + ". It reaches every node by gossip."));
    $("c-apply").hidden = true;
    $("c-force-label").hidden = true;
    $("c-reason").value = "";
    state.pending = null;
    loadStatus();
  } catch (e) {
    $("c-result").append(h("p", { class: "bad" }, "Not applied: " + e.message));
  }
}

$("change").addEventListener("submit", preview);
$("c-apply").addEventListener("click", apply);
for (const id of ["c-action", "c-pool", "c-region", "c-expires"]) {
  $(id).addEventListener("change", () => {
    state.pending = null;
    $("c-apply").hidden = true;
    if (state.status) renderChangeForm(state.status);
  });
}
