// The nuReality study page: join a study, run its trials in the three.js scene (desktop or WebXR), record when
// the participant judges it safe to cross, ask the crossing decision and the study's Likert items, and deliver
// every event to the server exactly once even across network failures and reloads.
//
// From the publications (Schmitt et al. 2022, arXiv 2201.04742; the companion RA-L 2022 study): participants
// in VR decide when it is safe to cross in front of an oncoming vehicle that may or may not stop; the study
// records how quickly they decide and administers repeated surveys of subjective experience.  Our
// reconstruction (assumption): the 1 s lead-in before the vehicle appears, SPACE / the controller trigger as
// the "safe to cross" response (only the first press after the vehicle's onset counts), the yes/no crossing
// question, 7-point Likert buttons, and the event protocol below.
//
// Event protocol (shared with discern.nureality.server): every event gets a client sequence number from 1,
// is kept in localStorage until the server acknowledges it ({"acked": highest contiguous seq}), and is re-sent
// unchanged after a failure or a reload; the server stores each (participant, seq) once.  t_ms is measured
// from the vehicle's onset with performance.now() (key presses use the event's own timeStamp, the same clock).
//
// URL flags: ?autostart=1 skips the "press SPACE when ready" prompt (tests), ?code=... fills in the study
// code, ?shadows=0 and ?aa=0 turn shadows and antialiasing off for slow machines (software WebGL).
// window.__nureality exposes the page's state for tests: state, frames, frameTimes, trial, vehicle (the
// kinematic state shown), vehicleWorld, vehicleNdc, acked, pending, events, lastSafe, lastError, log, audio,
// and sample(time) (a synchronous render and read-back).
import * as THREE from "three";

import { createAudio } from "./audio.js";
import { stateAt } from "./kinematics.js";
import { createWorld } from "./scene.js";
import { createXR } from "./xr.js";

const params = new URLSearchParams(location.search);
const AUTOSTART = params.get("autostart") === "1";
const LEAD_MS = 1000;
const STORE_KEY = "nureality.session.v1";
const BATCH = 200;
const LIKERT_ANCHORS = ["1 = strongly disagree", "7 = strongly agree"];

const $ = (id) => document.getElementById(id);

const hook = {
  state: "loading", frames: 0, frameTimes: [], trial: null, vehicle: null, vehicleWorld: null, vehicleNdc: null,
  acked: 0, pending: 0, events: [], lastSafe: null, lastError: null, xr: false, audio: null, sample: null, log: [],
};
window.__nureality = hook;

function setState(s) {
  hook.state = s;
  hook.log.push([Math.round(performance.now()), s]);
  document.body.dataset.state = s;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---- rendering ----

const canvas = $("scene");
let renderer;
try {
  renderer = new THREE.WebGLRenderer({ canvas, antialias: params.get("aa") !== "0" });
} catch (e) {
  setState("error");
  setStatus("This browser cannot show 3-D graphics (WebGL is unavailable), so the study cannot run here.");
  throw e;
}
renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
renderer.outputColorSpace = THREE.SRGBColorSpace;
const world = createWorld(renderer, { shadows: params.get("shadows") !== "0" });
const audio = createAudio();
hook.audio = audio;
let currentAsk = null;
const xr = createXR(renderer, world, { button: $("enter-vr"), onSelect: (t) => signalSafe(t, "xr-trigger") });

function resize() {
  const w = window.innerWidth, h = window.innerHeight;
  renderer.setSize(w, h, false);
  world.camera.aspect = w / h;
  world.camera.updateProjectionMatrix();
}
resize();
window.addEventListener("resize", resize);

let run = null;        // the trial being shown
let lastFrame = null;
const worldPos = new THREE.Vector3();

renderer.setAnimationLoop((time) => {
  hook.frames++;
  if (lastFrame !== null) {
    hook.frameTimes.push(time - lastFrame);
    if (hook.frameTimes.length > 600) hook.frameTimes.shift();
  }
  lastFrame = time;
  world.update(time / 1000);
  if (run && !run.ended) stepTrial(time);
  if (xr.presenting && currentAsk && !xr.panel.visible) xr.show(currentAsk.spec, currentAsk.done);
  audio.tick();
  audio.setListener(world.camera);
  renderer.render(world.scene, world.camera);
});

function stepTrial(time) {
  const t = (time - run.onset) / 1000;
  if (t < 0) return;
  if (!run.onsetSeen) {
    run.onsetSeen = true;
    emit("onset", run.index, 0, { frame_ms: round3(time - run.onset) });
    audio.vehicleStart(run.scenario);
  }
  const tc = Math.min(t, run.scenario.duration_s);
  const st = stateAt(run.scenario, tc);
  world.setVehicleState(st, tc);
  world.vehicle.car.root.getWorldPosition(worldPos);
  hook.vehicle = { t: tc, x: st.x, v: st.v, a: st.a, pitch: st.pitch };
  hook.vehicleWorld = { x: worldPos.x, y: worldPos.y, z: worldPos.z };
  const ndc = worldPos.clone().setY(0.8).project(world.camera);
  hook.vehicleNdc = { x: ndc.x, y: ndc.y, z: ndc.z };
  audio.vehicleUpdate(st, worldPos, tc);
  if (t >= run.scenario.duration_s) {
    run.ended = true;
    audio.vehicleStop();
    run.finish();
  }
}

// A synchronous render and read-back of the frame, for tests: size, mean and sd of luminance, the number of
// distinct colours (4 bits per channel), a hash of the pixels and the draw calls.  With `time` (s), the scene's
// animation (the trees) is first set to that time.
hook.sample = (time) => {
  if (typeof time === "number") world.update(time);
  renderer.render(world.scene, world.camera);
  const gl = renderer.getContext();
  const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
  const px = new Uint8Array(w * h * 4);
  gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
  const colours = new Set();
  let sum = 0, sum2 = 0, hash = 2166136261;
  for (let i = 0; i < px.length; i++) hash = Math.imul(hash ^ px[i], 16777619) >>> 0;
  for (let i = 0; i < px.length; i += 4) {
    const l = 0.2126 * px[i] + 0.7152 * px[i + 1] + 0.0722 * px[i + 2];
    sum += l;
    sum2 += l * l;
    colours.add(((px[i] >> 4) << 8) | ((px[i + 1] >> 4) << 4) | (px[i + 2] >> 4));
  }
  const n = w * h, mean = sum / n;
  return { width: w, height: h, mean, sd: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), colours: colours.size, hash,
    calls: renderer.info.render.calls };
};

// ---- looking around on a desktop: drag with the mouse, or the arrow keys ----

let yaw = 0, pitch = 0, drag = null;
function applyLook() {
  if (xr.presenting) return;
  pitch = Math.max(-1.2, Math.min(1.2, pitch));
  world.camera.rotation.set(pitch, yaw, 0);
}
canvas.addEventListener("pointerdown", (e) => {
  drag = { x: e.clientX, y: e.clientY };
  canvas.setPointerCapture(e.pointerId);
});
canvas.addEventListener("pointermove", (e) => {
  if (!drag) return;
  yaw += (e.clientX - drag.x) * 0.004;
  pitch += (e.clientY - drag.y) * 0.004;
  drag = { x: e.clientX, y: e.clientY };
  applyLook();
});
for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, () => { drag = null; });

const LOOK_KEYS = { ArrowLeft: [0.08, 0], ArrowRight: [-0.08, 0], ArrowUp: [0, 0.06], ArrowDown: [0, -0.06] };

window.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return;   // typing in the join form
  if (LOOK_KEYS[e.code]) {
    e.preventDefault();
    yaw += LOOK_KEYS[e.code][0];
    pitch += LOOK_KEYS[e.code][1];
    applyLook();
    return;
  }
  if (e.code === "Space") e.preventDefault();
  if (e.repeat) return;
  if (e.code === "Space" && hook.state === "running") {
    signalSafe(e.timeStamp > 0 ? e.timeStamp : performance.now(), "keyboard");
    return;
  }
  if (currentAsk) {
    const opt = currentAsk.spec.options.find((o) => o.key !== undefined && (o.key === e.key || o.key === e.code));
    if (opt) {
      e.preventDefault();
      currentAsk.done(opt.value);
    }
  }
});

// The participant signals that it is safe to cross: the first signal after the vehicle's onset counts.
function signalSafe(stamp, input) {
  if (!run || run.ended || run.safe || hook.state !== "running") return false;
  const tMs = stamp - run.onset;
  if (tMs < 0) return false;   // the vehicle is not there yet: not a response to it
  const st = stateAt(run.scenario, Math.min(tMs / 1000, run.scenario.duration_s));
  run.safe = emit("safe", run.index, tMs, { input, x_m: round3(st.x), v_mps: round3(st.v) });
  hook.lastSafe = run.safe;
  $("hint").textContent = "Noted.";
  return true;
}

// ---- prompts: HTML buttons on a desktop, the in-world panel inside a headset; the first answer wins ----

function ask(spec) {
  return new Promise((resolve) => {
    const box = $("prompt");
    $("prompt-title").textContent = spec.title;
    $("prompt-text").textContent = spec.text || "";
    const opts = $("prompt-options");
    opts.replaceChildren();
    opts.className = spec.kind || "";
    $("anchor-low").textContent = spec.anchors ? spec.anchors[0] : "";
    $("anchor-high").textContent = spec.anchors ? spec.anchors[1] : "";
    const entry = { spec, done: null };
    entry.done = (value) => {
      if (currentAsk !== entry) return;
      currentAsk = null;
      box.hidden = true;
      xr.hide();
      resolve(value);
    };
    for (const o of spec.options) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = o.label;
      b.dataset.value = String(o.value);
      b.addEventListener("click", () => entry.done(o.value));
      opts.append(b);
    }
    currentAsk = entry;
    box.hidden = false;
    if (xr.presenting) xr.show(spec, entry.done);
  });
}

// ---- the session and its event queue (localStorage) ----

let session = null;

function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
    return s && typeof s.token === "string" && Array.isArray(s.queue) ? s : null;
  } catch (_e) {
    return null;
  }
}

function saveSession() {
  if (session) localStorage.setItem(STORE_KEY, JSON.stringify(session));
  hook.pending = session ? session.queue.length : 0;
  hook.acked = session ? session.acked : 0;
  if (hook.state === "done") showDone();
}

function forgetSession() {
  localStorage.removeItem(STORE_KEY);
  session = null;
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session) headers.Authorization = `Bearer ${session.token}`;
  const r = await fetch(path, { method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (_e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && data.detail) || `${method} ${path}: HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return data;
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

function emit(type, trial, tMs, data) {
  const ev = { seq: session.nextSeq++, trial, type, t_ms: round3(tMs), data };
  session.queue.push(ev);
  hook.events.push(ev);
  saveSession();
  flush();
  return ev;
}

function ack(n) {
  if (typeof n !== "number") return;
  session.acked = Math.max(session.acked, n);
  session.queue = session.queue.filter((e) => e.seq > session.acked);
  saveSession();
}

let flushing = null, retryTimer = null, backoff = 500, refused = false;

function flush() {
  if (!flushing) flushing = sendQueue().finally(() => { flushing = null; });
  return flushing;
}

function retryLater() {
  if (retryTimer === null) {
    retryTimer = setTimeout(() => { retryTimer = null; flush(); }, backoff);
    backoff = Math.min(backoff * 2, 8000);
  }
}

// Send the queue in order until it is empty; true when everything is acknowledged.
async function sendQueue() {
  while (session && session.queue.length && !refused) {
    const before = session.acked;
    try {
      const body = await api("POST", "/api/events", { events: session.queue.slice(0, BATCH) });
      ack(body.acked);
    } catch (e) {
      hook.lastError = e.message;
      if ([401, 403, 409, 422].includes(e.status)) {   // retrying cannot help: report it and stop
        refused = true;
        setStatus(`The server refused the answers (${e.message}); please tell the experimenter.`);
        return false;
      }
      setStatus(`Offline: ${session.queue.length} answer(s) waiting; they are kept and sent automatically.`);
      retryLater();
      return false;
    }
    if (session.acked === before) {    // nothing new acknowledged: try again later rather than loop
      retryLater();
      return false;
    }
    backoff = 500;
  }
  if (session && !session.queue.length) setStatus("");
  return true;
}
window.addEventListener("online", () => flush());

// ---- study flow ----

const scenarios = new Map();

async function getScenario(id) {
  let wait = 500;
  while (!scenarios.has(id)) {
    try {
      scenarios.set(id, await api("GET", `/api/scenarios/${encodeURIComponent(id)}`));
    } catch (e) {
      if (e.status) throw e;
      setStatus(`Cannot load the scenario (${e.message}); retrying.`);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 8000);
    }
  }
  setStatus("");
  return scenarios.get(id);
}

function showJoin(error = "") {
  setState("join");
  $("prompt").hidden = true;
  $("done").hidden = true;
  $("join").hidden = false;
  if (!$("code").value) $("code").value = params.get("code") || "";
  $("join-error").textContent = error;
}

function showDone() {
  $("done").hidden = false;
  $("done-text").textContent = session && session.queue.length
    ? `Saving your answers (${session.queue.length} left)... please keep this page open.`
    : "All your answers are saved. Thank you for taking part!";
}

$("join").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (hook.state !== "join") return;   // e.g. a SPACE key-up on the still-focused Join button
  audio.resume();
  const code = $("code").value.trim(), participant = $("participant").value.trim();
  if (!code || !participant) {
    $("join-error").textContent = "Please enter the study code and your participant label.";
    return;
  }
  $("join-button").disabled = true;
  try {
    const old = session;
    // joining again as the same participant carries that participant's token (the server answers a taken
    // label to its owner only); a new label carries none
    session = old && String(old.code || "").toUpperCase() === code.toUpperCase() && old.participant === participant
      ? old : null;
    let j;
    try {
      j = await api("POST", "/api/join", { code, participant });
    } finally {
      session = old;
    }
    adopt(j, code, participant);
    $("join").hidden = true;
    await resume();
  } catch (err) {
    showJoin(err.message);
  } finally {
    $("join-button").disabled = false;
  }
});

function adopt(j, code, participant) {
  const keep = session && session.participant_id === j.participant_id;
  session = {
    code, participant, participant_id: j.participant_id, token: j.token, trials: j.trials,
    likert: Array.isArray(j.likert) ? j.likert : [], study: j.study || "",
    nextSeq: keep ? session.nextSeq : 1, acked: keep ? session.acked : 0, queue: keep ? session.queue : [],
    attempts: keep ? session.attempts : {},
  };
  refused = false;
  saveSession();
}

// Deliver what is pending, ask the server where this participant stands, and go on from there.
async function resume() {
  setState("syncing");
  await flush();
  const p = await api("GET", "/api/progress");
  ack(p.acked);
  session.nextSeq = Math.max(session.nextSeq, p.acked + 1);
  saveSession();
  const doneHere = new Set(session.queue.filter((e) => e.type === "trial_end").map((e) => e.trial));
  let next = typeof p.next_trial === "number" ? p.next_trial : session.trials.length;
  while (doneHere.has(next)) next++;
  for (let i = next; i < session.trials.length; i++) await runTrial(session.trials[i], i);
  setState("done");
  showDone();
}

async function runTrial(trial, position) {
  const n = session.trials.length;
  setState("loading");
  const scenario = await getScenario(trial.scenario);
  world.setScenario(scenario);
  Object.assign(hook, { vehicle: null, vehicleWorld: null, vehicleNdc: null, lastSafe: null });
  hook.trial = { index: trial.index, scenario: scenario.id, position, of: n };
  if (!AUTOSTART) {
    setState("ready");
    await ask({ title: `Trial ${position + 1} of ${n}`,
      text: "Stand at the kerb and watch the road: a vehicle will approach. Press SPACE (or pull the trigger) as soon "
        + "as you judge it safe to cross. Press SPACE now when you are ready.",
      options: [{ label: "Ready (SPACE)", value: true, key: " " }] });
  }
  audio.resume();
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();  // SPACE must not click
  const attempt = (session.attempts[trial.index] || 0) + 1;
  session.attempts[trial.index] = attempt;
  const start = performance.now();
  const onset = start + LEAD_MS;
  run = { index: trial.index, scenario, onset, safe: null, ended: false, onsetSeen: false, finish: null };
  const finished = new Promise((r) => { run.finish = r; });
  emit("trial_start", trial.index, start - onset, { scenario: scenario.id, attempt, lead_ms: LEAD_MS,
    xr: xr.presenting, viewport: [window.innerWidth, window.innerHeight] });
  $("hint").textContent = "Press SPACE as soon as you judge it safe to cross.";
  $("hint").hidden = false;
  setState("running");
  await finished;
  $("hint").hidden = true;
  const since = () => performance.now() - onset;
  setState("decision");
  const cross = await ask({ title: "Your decision", text: "Would you have crossed the street in front of this vehicle?",
    options: [{ label: "Yes, I would cross", value: true, key: "y" },
      { label: "No, I would wait", value: false, key: "n" }] });
  emit("decision", trial.index, since(), { cross });
  for (let k = 0; k < session.likert.length; k++) {
    setState("likert");
    const value = await ask({ title: `Question ${k + 1} of ${session.likert.length}`, text: session.likert[k],
      kind: "likert", anchors: LIKERT_ANCHORS,
      options: [1, 2, 3, 4, 5, 6, 7].map((v) => ({ label: String(v), value: v, key: String(v) })) });
    emit("likert", trial.index, since(), { item: k, value });
  }
  emit("trial_end", trial.index, since(), { safe_ms: run.safe ? run.safe.t_ms : null });
  world.hideVehicle();
  run = null;
}

async function boot() {
  session = loadSession();
  if (!session) {
    showJoin();
    return;
  }
  try {
    await resume();
  } catch (e) {
    if ([401, 403, 404].includes(e.status)) {
      forgetSession();
      showJoin(`Please join again (${e.message}).`);
    } else {
      setState("offline");
      setStatus(`Cannot reach the study server (${e.message}); retrying.`);
      setTimeout(boot, 3000);
    }
  }
}

xr.detect().then((ok) => { hook.xr = ok; });
boot();
