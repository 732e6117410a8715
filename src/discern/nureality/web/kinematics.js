// Vehicle kinematics of a nuReality scenario (bumper-to-crosswalk distance x, speed v, acceleration a, pitch).
//
// The same formulas, in the same floating-point order, as discern.nureality.kinematics (Python); a test runs
// this module under Node and checks both agree to 1e-9.  From the publications: easing into a full stop,
// stopping farther away, braking earlier and harder.  Every number and formula here is our reconstruction
// (assumption):
//   t_onset = (start_distance_m - onset_distance_m) / v0;  D = onset_distance_m - stop_distance_m;  T = 2 D / v0
//   u = (t - t_onset) / T
//   linear, hard: v = v0 (1 - u),            x = onset - v0 T (u - u^2 / 2),           decel = v0 / T
//   eased:        v = v0 (1 - u^2 (3 - 2u)), x = onset - v0 T (u - u^3 + u^4 / 2),     decel = 6 v0 / T u (1 - u)
//   pitch = pitch_deg * decel / max decel while braking (degrees, positive nose-down), else 0
//   after the stop: x = stop_distance_m, v = a = pitch = 0; without braking: x = start - v0 t, v = v0.
// No dependencies; scenario objects use the JSON field names (snake_case).

export const DEFAULT_DT = 1 / 60;

export function brakingTimes(scenario) {
  const b = scenario.braking;
  if (!b) return null;
  const v0 = scenario.v0_mps;
  const dist = b.onset_distance_m - scenario.stop_distance_m;
  return { onset: (scenario.start_distance_m - b.onset_distance_m) / v0, duration: 2.0 * dist / v0 };
}

export function stateAt(scenario, t) {
  const v0 = scenario.v0_mps;
  const start = scenario.start_distance_m;
  const b = scenario.braking;
  const cruise = { x: start - v0 * t, v: v0, a: 0, pitch: 0 };
  if (!b) return cruise;
  const onset = b.onset_distance_m;
  const stop = scenario.stop_distance_m;
  const dist = onset - stop;
  const bigT = 2.0 * dist / v0;
  const tOnset = (start - onset) / v0;
  const tStop = tOnset + bigT;
  if (t < tOnset) return cruise;
  if (t >= tStop) return { x: stop, v: 0, a: 0, pitch: 0 };
  const u = (t - tOnset) / bigT;
  let v, s, decel, maxDecel;
  if (b.profile === "eased") {
    v = v0 * (1.0 - u * u * (3.0 - 2.0 * u));
    s = v0 * bigT * (u - u * u * u + u * u * u * u / 2.0);
    decel = 6.0 * v0 / bigT * u * (1.0 - u);
    maxDecel = 1.5 * v0 / bigT;
  } else {
    v = v0 * (1.0 - u);
    s = v0 * bigT * (u - u * u / 2.0);
    decel = v0 / bigT;
    maxDecel = v0 / bigT;
  }
  return { x: onset - s, v, a: -decel, pitch: b.pitch_deg * (decel / maxDecel) };
}

export function frameCount(durationS, dt) {
  if (!(dt > 0)) throw new Error(`dt must be > 0, got ${dt}`);
  return Math.floor(durationS / dt + 1e-9) + 1;
}

export function trajectory(scenario, dt = DEFAULT_DT) {
  const n = frameCount(scenario.duration_s, dt);
  const out = { t: [], x: [], v: [], a: [], pitch: [] };
  for (let i = 0; i < n; i++) {
    const t = i * dt;
    const s = stateAt(scenario, t);
    out.t.push(t);
    out.x.push(s.x);
    out.v.push(s.v);
    out.a.push(s.a);
    out.pitch.push(s.pitch);
  }
  return out;
}
