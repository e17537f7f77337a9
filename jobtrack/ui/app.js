// jobtrack's page for people: namespaces, their jobs with live progress, one job's failures.
//
// Plain JavaScript, no framework, nothing fetched from elsewhere. Every URL is
// relative ("../namespaces/..."), so the page works wherever the app is mounted.
// Every string from the server enters the page as text (textContent, text
// nodes), never as HTML. Live: the visible list is read at most once a second
// and not at all while the tab is hidden; only the one job a person opened
// gets a server-sent event stream (a browser has ~6 connections per host).
"use strict";

const API = "../"; // the app's routes, relative to <prefix>/ui/
const POLL_MS = 1000;
const NAMESPACES_EVERY = 5; // namespace counts: every 5th poll
const JOBS_PER_PAGE = 25;
const ITEMS_PER_PAGE = 50;

const missing = { namespaces: false, progress: false }; // routes this server lacks (404)
const view = { ns: "", status: "", job: "", cursors: [null], nsLimit: 100, generation: 0 };
let rows = new Map(); // job id -> its row in the jobs table, kept so bars move in place
let detail = null; // the job a person opened

// --- small helpers --------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  node.append(...children); // strings become text nodes
  return node;
}

function note(id, text) {
  const node = $(id);
  node.hidden = !text;
  node.textContent = text || "";
}

class HttpError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

// A 404 that names no namespace: the server has no such route (an older jobtrack).
const routeMissing = (err) =>
  err instanceof HttpError && err.status === 404 && !(err.body && "namespace_name" in err.body);

async function getJSON(path) {
  const response = await fetch(API + path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

const namespacePath = (ns) => `namespaces/${encodeURIComponent(ns)}/upload-jobs`;
const jobPath = (ns, id) => `${namespacePath(ns)}/${encodeURIComponent(id)}`;

function link(params) {
  const kept = Object.entries(params).filter(([, value]) => value);
  return "#" + new URLSearchParams(kept).toString();
}

// --- formats -----------------------------------------------------------------

function timeEl(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  const today = when.toDateString() === new Date().toDateString();
  return el("time", { datetime: iso, title: iso }, today ? when.toLocaleTimeString() : when.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }));
}

function duration(seconds) {
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  let m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m} min ${s} s`;
  let h = Math.floor(m / 60);
  m %= 60;
  if (h < 48) return `${h} h ${m} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function rate(perSecond) {
  if (perSecond === null || perSecond === undefined) return "—";
  if (perSecond === 0) return "0 items/s";
  if (perSecond * 60 < 0.1) return "< 0.1 items/min";
  if (perSecond < 1) return `${(perSecond * 60).toPrecision(2)} items/min`;
  return `${perSecond < 100 ? perSecond.toPrecision(3) : Math.round(perSecond)} items/s`;
}

const percentDone = (job) => (job.total === 0 ? 100 : (100 * (job.successful + job.failed)) / job.total);

// What the job is, in words (never colour alone): SPEC section 1 has "running" and
// "completed"; an aborted job is completed with its remaining items failed.
function describe(job, progress) {
  if (job.status === "completed") {
    if (job.failed === 0) return { kind: "completed", icon: "✓", text: "completed" };
    if (job.successful === 0) return { kind: "failed", icon: "✗", text: `completed, all ${job.failed} failed` };
    return { kind: "partial", icon: "!", text: `completed, ${job.failed} failed` };
  }
  if (progress && progress.stalled) return { kind: "stalled", icon: "⚠", text: "stalled" };
  return { kind: "running", icon: "▶", text: job.status };
}

function badge(job, progress) {
  const what = describe(job, progress);
  const title = what.kind === "stalled" ? `No update since ${job.updated_at}` : null;
  return el("span", { class: `badge ${what.kind}`, title }, el("span", { "aria-hidden": "true" }, what.icon + " "), what.text);
}

function rateOf(job, progress) {
  if (job.status === "completed") {
    const seconds = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
    return seconds > 0 ? "avg " + rate((job.successful + job.failed) / seconds) : "—";
  }
  return progress ? rate(progress.rate_per_s) : "—";
}

function etaOf(job, progress) {
  if (job.status === "completed") return "done";
  if (!progress) return "—";
  if (progress.stalled) return "— (stalled)";
  if (!progress.eta_at) return "— (no rate yet)";
  // "now" by the server's clock, which the ETA was computed with
  const now = Date.parse(job.started_at) + progress.elapsed_s * 1000;
  return el("time", { datetime: progress.eta_at, title: progress.eta_at }, "in " + duration((Date.parse(progress.eta_at) - now) / 1000));
}

function elapsedOf(job, progress) {
  if (progress) return duration(progress.elapsed_s);
  if (!job.finished_at) return "—";
  return duration((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000);
}

const doneText = (job) => `${job.successful + job.failed} of ${job.total} · ${Math.floor(percentDone(job))}%`;

// --- namespaces ----------------------------------------------------------------

let shownNamespaces = "";

async function loadNamespaces() {
  let page;
  try {
    page = await getJSON(`namespaces?limit=${view.nsLimit}`);
  } catch (err) {
    if (routeMissing(err)) {
      missing.namespaces = true;
      $("namespaces").hidden = true;
      note("namespaces-note", "This server does not list namespaces: open one by its name.");
      return;
    }
    if (!(err instanceof HttpError)) throw err;
    note("namespaces-note", err.message);
    return;
  }
  note("namespaces-note", page.namespaces.length ? "" : "No jobs yet.");
  $("namespaces-more").hidden = !page.next_cursor || view.nsLimit >= 1000;
  const text = JSON.stringify(page.namespaces);
  if (text === shownNamespaces) return; // unchanged: keep the rows (and any focus on them)
  shownNamespaces = text;
  const count = (n) => (n === null || n === undefined ? "—" : String(n));
  $("namespaces").tBodies[0].replaceChildren(
    ...page.namespaces.map((ns) =>
      el(
        "tr",
        { "aria-current": ns.name === view.ns ? "true" : null },
        el("th", { scope: "row" }, el("a", { href: link({ ns: ns.name }) }, ns.name)),
        el("td", { class: "num" }, count(ns.running)),
        el("td", { class: ns.stalled ? "num stalled" : "num" }, count(ns.stalled)),
        el("td", { class: "num" }, count(ns.completed)),
      ),
    ),
  );
}

// --- a namespace's jobs ----------------------------------------------------------

async function progressOf(jobs) {
  const found = new Map();
  if (missing.progress) return found;
  const answers = await Promise.all(
    jobs.map((job) => getJSON(`${jobPath(job.namespace_name, job.job_id)}/progress`).catch((err) => err)),
  );
  answers.forEach((answer, i) => {
    if (routeMissing(answer)) missing.progress = true;
    else if (answer instanceof Error && !(answer instanceof HttpError)) throw answer;
    else if (!(answer instanceof Error)) found.set(jobs[i].job_id, answer);
  });
  return found;
}

async function loadJobs() {
  const generation = view.generation;
  const query = new URLSearchParams({ limit: JOBS_PER_PAGE });
  if (view.status) query.set("status", view.status);
  const cursor = view.cursors[view.cursors.length - 1];
  if (cursor) query.set("cursor", cursor);
  let page;
  try {
    page = await getJSON(`${namespacePath(view.ns)}?${query}`);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    if (generation !== view.generation) return;
    note("jobs-note", err.message);
    renderJobs([], new Map());
    return;
  }
  const progress = await progressOf(page.jobs.filter((job) => job.status === "running"));
  if (generation !== view.generation) return; // the person went elsewhere meanwhile
  note("jobs-note", page.jobs.length ? "" : view.cursors.length > 1 ? "No more jobs." : "No jobs here.");
  renderJobs(page.jobs, progress);
  view.nextCursor = page.next_cursor;
  $("jobs-next").hidden = !page.next_cursor;
  $("jobs-first").hidden = view.cursors.length === 1;
}

function jobRow(job) {
  const cells = {
    link: el("a", { href: link({ ns: job.namespace_name, status: view.status, job: job.job_id }) }, el("code", {}, job.job_id)),
    status: el("td"),
    bar: el("progress", { max: "100", value: "0", "aria-label": `Progress of ${job.job_id}` }),
    done: el("span", { class: "done" }),
    rate: el("td", { class: "num" }),
    eta: el("td"),
    failed: el("td", { class: "num" }),
    updated: el("td"),
  };
  cells.row = el(
    "tr",
    { "data-job": job.job_id },
    el("th", { scope: "row" }, cells.link),
    cells.status,
    el("td", { class: "bar" }, cells.bar, " ", cells.done),
    cells.rate,
    cells.eta,
    cells.failed,
    cells.updated,
  );
  return cells;
}

function renderJobs(jobs, progress) {
  const next = new Map();
  for (const job of jobs) {
    const cells = rows.get(job.job_id) || jobRow(job);
    const known = progress.get(job.job_id);
    cells.row.dataset.status = describe(job, known).kind;
    cells.status.replaceChildren(badge(job, known));
    cells.bar.value = percentDone(job);
    cells.done.textContent = doneText(job);
    cells.rate.textContent = rateOf(job, known);
    cells.eta.replaceChildren(etaOf(job, known));
    cells.failed.textContent = String(job.failed);
    cells.updated.replaceChildren(timeEl(job.updated_at));
    next.set(job.job_id, cells);
  }
  rows = next;
  const body = $("jobs").tBodies[0];
  const wanted = [...next.values()].map((cells) => cells.row);
  if (wanted.length !== body.children.length || wanted.some((row, i) => body.children[i] !== row)) {
    body.replaceChildren(...wanted); // only when the order changed: rows keep focus
  }
}

// --- one job -------------------------------------------------------------------

function openJob(ns, id) {
  closeJob();
  detail = { ns, id, job: null, progress: null, stream: null, streamFailed: false, failedSeen: -1, itemsCursor: null, gone: false };
  $("job-id").textContent = id;
  $("job-close").href = link({ ns, status: view.status });
  note("job-note", "");
  $("job-body").hidden = true;
  $("job-section").hidden = false;
  $("job-title").focus();
}

function closeJob() {
  if (detail && detail.stream) detail.stream.close();
  detail = null;
  $("job-section").hidden = true;
  for (const id of ["errors", "failed-items"]) $(id).tBodies[0].replaceChildren();
}

function follow(d) {
  const source = new EventSource(API + jobPath(d.ns, d.id) + "/events");
  d.stream = source;
  const stop = () => {
    source.close();
    if (d.stream === source) d.stream = null;
  };
  source.addEventListener("status", (event) => {
    if (detail !== d) return stop();
    d.job = JSON.parse(event.data);
    if (d.job.status === "completed") stop(); // the stream ends here: no reconnect
    renderJob(d);
  });
  source.addEventListener("failure", () => {
    stop();
    d.streamFailed = true; // the next poll reads the job and says why
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      d.streamFailed = true;
      stop();
    } // otherwise the browser reconnects by itself, resuming with Last-Event-ID
  };
}

async function refreshJob() {
  const d = detail;
  if (!d || d.gone) return;
  if (!d.job || (!d.stream && d.job.status !== "completed")) {
    try {
      d.job = await getJSON(jobPath(d.ns, d.id));
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (detail !== d) return;
      d.gone = err.status === 404 || err.status === 410;
      note("job-note", err.message);
      $("job-body").hidden = d.gone;
      return;
    }
    if (detail !== d) return;
    if (d.job.status === "running" && !d.stream && !d.streamFailed) follow(d);
  }
  if (d.job.status === "running" || !d.progress || d.progress.percent < 100) {
    d.progress = (await progressOf([d.job])).get(d.id) || null;
  }
  if (d.job.failed !== d.failedSeen) await loadFailures(d, true);
  if (detail === d) renderJob(d);
}

async function loadFailures(d, fromStart) {
  const query = new URLSearchParams({ limit: ITEMS_PER_PAGE });
  if (!fromStart && d.itemsCursor) query.set("cursor", d.itemsCursor);
  const seen = d.job.failed;
  let groups, page;
  try {
    [groups, page] = await Promise.all([
      fromStart ? getJSON(`${jobPath(d.ns, d.id)}/errors`) : null,
      getJSON(`${jobPath(d.ns, d.id)}/failed-items?${query}`),
    ]);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    note("job-note", err.message);
    d.failedSeen = seen;
    return;
  }
  if (detail !== d) return;
  d.failedSeen = seen;
  d.itemsCursor = page.next_cursor;
  $("failed-more").hidden = !page.next_cursor;
  if (groups) {
    $("errors").tBodies[0].replaceChildren(
      ...groups.errors.map((group) =>
        el(
          "tr",
          {},
          el("td", {}, group.message === null ? el("em", {}, "(other messages)") : el("code", {}, group.message)),
          el("td", { class: "num" }, String(group.count)),
          el("td", {}, timeEl(group.first_at)),
          el("td", {}, timeEl(group.last_at)),
        ),
      ),
    );
  }
  const items = page.items.map((item) =>
    el("tr", {}, el("th", { scope: "row" }, el("code", {}, item.item)), el("td", {}, item.error === null ? "—" : item.error), el("td", {}, timeEl(item.failed_at))),
  );
  const body = $("failed-items").tBodies[0];
  if (fromStart) body.replaceChildren(...items);
  else body.append(...items);
}

function fact(term, ...value) {
  return [el("dt", {}, term), el("dd", {}, ...value)];
}

function renderJob(d) {
  const job = d.job;
  const progress = d.progress;
  $("job-body").hidden = false;
  $("job-section").dataset.status = describe(job, progress).kind;
  $("job-bar").value = percentDone(job);
  $("job-percent").textContent = doneText(job);
  const live = d.stream ? "live (server-sent events)" : job.status === "completed" ? "final" : "read every second";
  $("job-facts").replaceChildren(
    ...fact("Status", badge(job, progress)),
    ...fact("Items", `${job.total} in all: ${job.successful} stored, ${job.failed} failed, ${job.processed} processed`),
    ...fact("Rate", rateOf(job, progress)),
    ...fact("ETA", etaOf(job, progress)),
    ...fact("Elapsed", elapsedOf(job, progress)),
    ...fact("Started", timeEl(job.started_at)),
    ...fact("Updated", timeEl(job.updated_at)),
    ...fact("Finished", timeEl(job.finished_at)),
    ...(progress && progress.expires_at ? fact("Kept until", timeEl(progress.expires_at)) : []),
    ...fact("Last error", job.last_error === null ? "—" : el("code", {}, job.last_error)),
    ...fact("Updates", live),
  );
}

// --- the loop and navigation ---------------------------------------------------------

let timer = null;
let polling = false;
let again = false;
let ticks = 0;

function connection(text) {
  if ($("connection").textContent !== text) $("connection").textContent = text;
}

async function tick() {
  timer = null;
  if (document.hidden) return connection("Paused while this tab is hidden.");
  polling = true;
  try {
    const work = [];
    if (!missing.namespaces && ticks % NAMESPACES_EVERY === 0) work.push(loadNamespaces());
    if (view.ns) work.push(loadJobs());
    if (detail) work.push(refreshJob());
    await Promise.all(work);
    connection("Live: updated every second.");
  } catch (err) {
    connection(`Cannot reach the server (${err.message}); trying again.`);
  } finally {
    polling = false;
  }
  ticks += 1;
  if (again) {
    again = false;
    return tick();
  }
  if (!document.hidden) timer = setTimeout(tick, POLL_MS);
}

function poke() {
  if (polling) {
    again = true;
    return;
  }
  clearTimeout(timer);
  tick();
}

function navigate() {
  const params = new URLSearchParams(location.hash.slice(1));
  const ns = params.get("ns") || "";
  const status = params.get("status") || "";
  const job = params.get("job") || "";
  if (ns !== view.ns || status !== view.status) {
    Object.assign(view, { ns, status, cursors: [null] });
    view.generation += 1;
    rows = new Map();
    $("jobs").tBodies[0].replaceChildren();
    shownNamespaces = ""; // mark the namespace now open
    ticks = 0;
  }
  $("jobs-section").hidden = !ns;
  $("jobs-namespace").textContent = ns;
  $("status-filter").value = status;
  if (job !== view.job || ns !== (detail && detail.ns)) {
    view.job = job;
    if (job && ns) openJob(ns, job);
    else closeJob();
  }
  poke();
}

function init() {
  $("open-namespace").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = link({ ns: $("namespace-input").value.trim() });
  });
  $("status-filter").addEventListener("change", (event) => {
    location.hash = link({ ns: view.ns, status: event.target.value });
  });
  $("jobs-next").addEventListener("click", () => {
    view.cursors.push(view.nextCursor);
    view.generation += 1;
    poke();
  });
  $("jobs-first").addEventListener("click", () => {
    view.cursors = [null];
    view.generation += 1;
    poke();
  });
  $("namespaces-more").addEventListener("click", () => {
    view.nsLimit = Math.min(1000, view.nsLimit + 100);
    ticks = 0;
    poke();
  });
  $("failed-more").addEventListener("click", () => {
    if (detail) loadFailures(detail, false).catch((err) => connection(err.message));
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) connection("Paused while this tab is hidden.");
    else poke();
  });
  window.addEventListener("hashchange", navigate);
  navigate();
}

init();
