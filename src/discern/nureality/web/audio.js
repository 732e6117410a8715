// Procedural WebAudio for the nuReality scene: an urban ambience and the approaching vehicle's sounds, all
// synthesised at run time (no sound files), positioned in 3-D with PannerNodes around the listener's head.
//
// From the publications (Schmitt et al. 2022, arXiv 2201.04742; the companion study): birds chirping, cars
// honking in the distance and people talking; the vehicle's intent may be expressed by sound (exaggerated
// braking and, probably, a low-frequency cue; the press excerpt is truncated there).  Our reconstruction
// (assumption): every synthesis recipe and level below - chirps as sine sweeps of 2.6-4.8 kHz, horns as two
// detuned square waves through a low-pass filter, speech-like babble as a glottal sawtooth and noise through
// two moving formant filters, the engine as a sawtooth whose pitch follows the speed, tyre noise, braking as
// band-passed noise ('exaggerated': about 5x louder, a squeal and an air-brake release, so longer), and the
// low-frequency cue as 50 Hz pulses at 2 Hz during braking.
import { mulberry32 } from "./scene.js";

export function createAudio({ seed = 4242 } = {}) {
  const AC = window.AudioContext || window.webkitAudioContext;
  const rnd = mulberry32(seed);
  const counts = { birds: 0, horns: 0, talk: 0, brake: 0, squeal: 0, low_frequency: 0, engine: 0 };
  let ctx = null, master = null, ambientBus = null, noise = null;
  let ambient = null;   // next start times of the ambient sources (in ctx time)
  let veh = null;       // the running vehicle voice

  function build() {
    ctx = new AC();
    const comp = ctx.createDynamicsCompressor();
    comp.connect(ctx.destination);
    master = ctx.createGain();
    master.gain.value = 0.8;
    master.connect(comp);
    ambientBus = ctx.createGain();
    ambientBus.gain.value = 0.6;
    ambientBus.connect(master);
    noise = ctx.createBuffer(1, ctx.sampleRate * 2, ctx.sampleRate);
    const ch = noise.getChannelData(0);
    for (let i = 0; i < ch.length; i++) ch[i] = rnd() * 2 - 1;
    const now = ctx.currentTime;
    ambient = { birds: now + 0.3, horns: now + 4 + rnd() * 6, talk: now + 1 + rnd() * 2 };
  }

  // Start (or resume) audio; call from a user gesture (browsers keep audio suspended until one).
  function resume() {
    if (!AC) return Promise.resolve(false);
    if (!ctx) build();
    if (ctx.state === "suspended") return ctx.resume().then(() => true, () => false);
    return Promise.resolve(true);
  }

  function setPos(p, x, y, z) {
    if (p.positionX) { p.positionX.value = x; p.positionY.value = y; p.positionZ.value = z; }
    else p.setPosition(x, y, z);
  }

  function panner(x, y, z, ref = 4, dest = ambientBus) {
    const p = ctx.createPanner();
    p.panningModel = "equalpower";
    p.distanceModel = "inverse";
    p.refDistance = ref;
    p.maxDistance = 1000;
    p.rolloffFactor = 1;
    setPos(p, x, y, z);
    p.connect(dest);
    return p;
  }

  function noiseSource(t0, loop = true) {
    const s = ctx.createBufferSource();
    s.buffer = noise;
    s.loop = loop;
    s.loopStart = 0;
    s.playbackRate.value = 0.9 + rnd() * 0.2;
    s.start(t0, rnd() * 1.5);
    return s;
  }

  // ---- ambience ----

  function bird(t0) {
    const out = panner(-30 + rnd() * 60, 6 + rnd() * 8, -40 + rnd() * 60, 6);
    const n = 2 + Math.floor(rnd() * 4);
    let t = t0;
    for (let i = 0; i < n; i++) {
      const dur = 0.06 + rnd() * 0.1, f0 = 2600 + rnd() * 2200, f1 = f0 * (0.6 + rnd() * 0.9);
      const osc = ctx.createOscillator();
      const g = ctx.createGain();
      osc.type = "sine";
      osc.frequency.setValueAtTime(f0, t);
      osc.frequency.exponentialRampToValueAtTime(f1, t + dur);
      g.gain.setValueAtTime(0.0001, t);
      g.gain.linearRampToValueAtTime(0.18, t + 0.01);
      g.gain.exponentialRampToValueAtTime(0.0001, t + dur);
      osc.connect(g).connect(out);
      osc.start(t);
      osc.stop(t + dur + 0.02);
      t += dur + 0.03 + rnd() * 0.12;
    }
    counts.birds++;
    return 0.8 + rnd() * 3.2;
  }

  function horn(t0) {
    const dist = 50 + rnd() * 80, ang = rnd() * 2 * Math.PI;
    const out = panner(Math.cos(ang) * dist, 1, Math.sin(ang) * dist, 8);
    const lp = ctx.createBiquadFilter();
    lp.type = "lowpass";
    lp.frequency.value = 1400;
    const g = ctx.createGain();
    g.gain.value = 0;
    lp.connect(g).connect(out);
    const base = 340 + rnd() * 80;
    const honks = 1 + Math.floor(rnd() * 2);
    let t = t0, end = t0;
    for (let k = 0; k < honks; k++) {
      const dur = 0.2 + rnd() * 0.45;
      g.gain.setValueAtTime(0, t);
      g.gain.linearRampToValueAtTime(0.5, t + 0.02);
      g.gain.setValueAtTime(0.5, t + dur);
      g.gain.linearRampToValueAtTime(0, t + dur + 0.04);
      end = t + dur + 0.05;
      t = end + 0.08 + rnd() * 0.1;
    }
    for (const f of [base, base * 1.26]) {
      const osc = ctx.createOscillator();
      osc.type = "square";
      osc.frequency.value = f;
      osc.connect(lp);
      osc.start(t0);
      osc.stop(end);
    }
    counts.horns++;
    return 8 + rnd() * 14;
  }

  function talk(t0) {
    const side = rnd() < 0.5 ? -1 : 1;
    const out = panner(side * (8 + rnd() * 4), 1.6, -25 + rnd() * 40, 3);
    const g = ctx.createGain();
    g.gain.value = 0;
    const f1 = ctx.createBiquadFilter(), f2 = ctx.createBiquadFilter();
    f1.type = f2.type = "bandpass";
    f1.Q.value = 5;
    f2.Q.value = 7;
    const voice = ctx.createOscillator();
    voice.type = "sawtooth";
    const pitch = rnd() < 0.5 ? 110 + rnd() * 30 : 190 + rnd() * 40;
    const breath = noiseSource(t0);
    const breathGain = ctx.createGain();
    breathGain.gain.value = 0.25;
    breath.connect(breathGain);
    for (const src of [voice, breathGain]) { src.connect(f1); src.connect(f2); }
    f1.connect(g);
    f2.connect(g);
    g.connect(out);
    let t = t0;
    const syllables = 4 + Math.floor(rnd() * 9);
    for (let k = 0; k < syllables; k++) {
      const dur = 0.09 + rnd() * 0.14;
      voice.frequency.setValueAtTime(pitch * (0.9 + rnd() * 0.25), t);
      f1.frequency.setValueAtTime(300 + rnd() * 500, t);
      f2.frequency.setValueAtTime(900 + rnd() * 1300, t);
      g.gain.setValueAtTime(0, t);
      g.gain.linearRampToValueAtTime(0.22, t + 0.03);
      g.gain.linearRampToValueAtTime(0, t + dur);
      t += dur + 0.03 + rnd() * 0.08;
      if (rnd() < 0.15) t += 0.25;  // a pause between words
    }
    voice.start(t0);
    voice.stop(t + 0.05);
    breath.stop(t + 0.05);
    counts.talk++;
    return 1.5 + rnd() * 4;
  }

  // Called every frame: schedules the ambient sounds a little ahead of time.
  function tick() {
    if (!ctx || ctx.state !== "running") return;
    const horizon = ctx.currentTime + 0.15;
    for (const [name, fn] of [["birds", bird], ["horns", horn], ["talk", talk]]) {
      while (ambient[name] < horizon) {
        const at = Math.max(ambient[name], ctx.currentTime);
        ambient[name] = at + fn(at);
      }
    }
  }

  function setListener(camera) {
    if (!ctx) return;
    const e = camera.matrixWorld.elements;
    const L = ctx.listener;
    const [px, py, pz] = [e[12], e[13], e[14]];
    const [fx, fy, fz] = [-e[8], -e[9], -e[10]];
    const [ux, uy, uz] = [e[4], e[5], e[6]];
    if (L.positionX) {
      L.positionX.value = px; L.positionY.value = py; L.positionZ.value = pz;
      L.forwardX.value = fx; L.forwardY.value = fy; L.forwardZ.value = fz;
      L.upX.value = ux; L.upY.value = uy; L.upZ.value = uz;
    } else {
      L.setPosition(px, py, pz);
      L.setOrientation(fx, fy, fz, ux, uy, uz);
    }
  }

  // ---- the vehicle ----

  function vehicleStart(scenario) {
    vehicleStop();
    if (!ctx || ctx.state !== "running") return;
    const t0 = ctx.currentTime;
    const out = panner(0, 0.5, -scenario.start_distance_m, 5, master);
    const sound = scenario.sound || {};
    const engGain = ctx.createGain();
    engGain.gain.value = 0;
    const lp = ctx.createBiquadFilter();
    lp.type = "lowpass";
    lp.frequency.value = 600;
    lp.connect(engGain).connect(out);
    const osc = ctx.createOscillator(), sub = ctx.createOscillator();
    osc.type = "sawtooth";
    sub.type = "triangle";
    osc.connect(lp);
    sub.connect(lp);
    osc.start(t0);
    sub.start(t0);
    const tyre = noiseSource(t0);
    const tyreLp = ctx.createBiquadFilter();
    tyreLp.type = "lowpass";
    tyreLp.frequency.value = 800;
    const tyreGain = ctx.createGain();
    tyreGain.gain.value = 0;
    tyre.connect(tyreLp).connect(tyreGain).connect(out);
    const b = scenario.braking;
    veh = { scenario, out, osc, sub, lp, engGain, tyre, tyreGain, extra: [], engine: sound.engine !== false,
      brakeAt: b ? (scenario.start_distance_m - b.onset_distance_m) / scenario.v0_mps : Infinity,
      brakeDur: b ? 2 * (b.onset_distance_m - scenario.stop_distance_m) / scenario.v0_mps : 0, braked: false };
    if (veh.engine) counts.engine++;
  }

  function brake(t0, dur, kind) {
    const src = noiseSource(t0);
    const bp = ctx.createBiquadFilter();
    bp.type = "bandpass";
    bp.frequency.value = kind === "exaggerated" ? 2400 : 3200;
    bp.Q.value = kind === "exaggerated" ? 2 : 1.5;
    const g = ctx.createGain();
    const level = kind === "exaggerated" ? 0.3 : 0.06;
    g.gain.setValueAtTime(0, t0);
    g.gain.linearRampToValueAtTime(level, t0 + 0.25);
    g.gain.setValueAtTime(level, t0 + Math.max(0.3, dur - 0.3));
    g.gain.linearRampToValueAtTime(0, t0 + dur + 0.2);
    src.connect(bp).connect(g).connect(veh.out);
    src.stop(t0 + dur + 0.3);
    veh.extra.push(src);
    counts.brake++;
    if (kind !== "exaggerated") return;
    const squeal = ctx.createOscillator(), lfo = ctx.createOscillator();
    const depth = ctx.createGain(), sg = ctx.createGain();
    squeal.frequency.value = 2900;
    lfo.frequency.value = 7;
    depth.gain.value = 40;
    lfo.connect(depth).connect(squeal.frequency);
    sg.gain.setValueAtTime(0, t0 + 0.4 * dur);
    sg.gain.linearRampToValueAtTime(0.12, t0 + 0.5 * dur);
    sg.gain.setValueAtTime(0.12, t0 + dur);
    sg.gain.linearRampToValueAtTime(0, t0 + dur + 0.3);
    squeal.connect(sg).connect(veh.out);
    squeal.start(t0);
    lfo.start(t0);
    squeal.stop(t0 + dur + 0.4);
    lfo.stop(t0 + dur + 0.4);
    const air = noiseSource(t0 + dur, false);   // air-brake release once stopped
    const hp = ctx.createBiquadFilter();
    hp.type = "highpass";
    hp.frequency.value = 1500;
    const ag = ctx.createGain();
    ag.gain.setValueAtTime(0.35, t0 + dur);
    ag.gain.exponentialRampToValueAtTime(0.001, t0 + dur + 0.9);
    air.connect(hp).connect(ag).connect(veh.out);
    air.stop(t0 + dur + 1.0);
    veh.extra.push(squeal, lfo, air);
    counts.squeal++;
  }

  function lowFrequencyCue(t0, dur) {
    const osc = ctx.createOscillator(), g = ctx.createGain();
    osc.frequency.value = 50;
    g.gain.value = 0;
    for (let t = t0; t < t0 + dur; t += 0.5) {  // 250 ms pulses at 2 Hz while braking
      g.gain.setValueAtTime(0, t);
      g.gain.linearRampToValueAtTime(0.8, t + 0.03);
      g.gain.setValueAtTime(0.8, t + 0.22);
      g.gain.linearRampToValueAtTime(0, t + 0.27);
    }
    osc.connect(g).connect(veh.out);
    osc.start(t0);
    osc.stop(t0 + dur + 0.3);
    veh.extra.push(osc);
    counts.low_frequency++;
  }

  // Per frame while the vehicle is shown: state {x, v, a, pitch} at scenario time t; pos = world position.
  function vehicleUpdate(st, pos, t) {
    if (!veh || !ctx) return;
    const now = ctx.currentTime;
    const { scenario } = veh;
    setPos(veh.out, pos.x, pos.y + 0.5, pos.z);
    const rel = Math.min(1, st.v / scenario.v0_mps);
    veh.osc.frequency.setTargetAtTime(32 + 5.5 * st.v, now, 0.05);
    veh.sub.frequency.setTargetAtTime(16 + 2.75 * st.v, now, 0.05);
    veh.lp.frequency.setTargetAtTime(250 + 60 * st.v, now, 0.05);
    veh.engGain.gain.setTargetAtTime(veh.engine ? 0.3 * (0.35 + 0.65 * rel) : 0, now, 0.08);
    veh.tyreGain.gain.setTargetAtTime(0.3 * rel * Math.sqrt(rel), now, 0.08);
    if (!veh.braked && scenario.yields && t >= veh.brakeAt) {
      veh.braked = true;
      const left = Math.max(0.05, veh.brakeDur - (t - veh.brakeAt));
      const sound = scenario.sound || {};
      if (sound.brake && sound.brake !== "none") brake(now, left, sound.brake);
      if (sound.low_frequency_cue) lowFrequencyCue(now, left);
    }
  }

  function vehicleStop() {
    if (!veh || !ctx) { veh = null; return; }
    const now = ctx.currentTime, v = veh;
    v.engGain.gain.setTargetAtTime(0, now, 0.1);
    v.tyreGain.gain.setTargetAtTime(0, now, 0.1);
    for (const node of [v.osc, v.sub, v.tyre, ...v.extra]) {
      try { node.stop(now + 0.6); } catch (_e) { /* already stopped */ }
    }
    veh = null;
  }

  return {
    resume, tick, setListener, vehicleStart, vehicleUpdate, vehicleStop, counts,
    get state() { return ctx ? ctx.state : (AC ? "idle" : "unsupported"); },
  };
}
