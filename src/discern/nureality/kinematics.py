"""Vehicle kinematics of a scenario: bumper-to-crosswalk distance, speed, acceleration and pitch over time.

From the publications: the vehicle approaches an urban crosswalk and may or may not stop; expressive
motion includes **easing into a full stop**, **stopping farther away** and **braking earlier and harder**
(with a pronounced nose dive, "sculpted motion").  Everything quantitative below is our reconstruction
(assumption); the same formulas, in the same floating-point order, live in ``web/kinematics.js`` (a test
checks that both agree to 1e-9):

- cruise at ``v0`` from ``start_distance_m`` at onset (t = 0); braking starts at
  ``t_onset = (start_distance - onset_distance) / v0``;
- braking distance ``D = onset_distance - stop_distance``, duration ``T = 2 D / v0`` (every profile's mean
  speed while braking is v0/2, so each covers exactly D);
- with ``u = (t - t_onset) / T``: **linear** and **hard** ``v = v0 (1 - u)`` (constant deceleration v0/T;
  "hard" differs by its shorter D and its pitch); **eased** ``v = v0 (1 - u^2 (3 - 2u))`` (smoothstep:
  the deceleration ``6 v0/T u (1 - u)`` rises from 0 and falls back to 0, peak ``1.5 v0/T`` at u = 1/2);
- position from the closed-form integrals: linear ``x = onset - v0 T (u - u^2/2)``, eased
  ``x = onset - v0 T (u - u^3 + u^4/2)``;
- pitch (degrees, positive nose-down) ``= pitch_deg * decel / max decel`` while braking, else 0;
- after the stop (t >= t_onset + T): ``x = stop_distance``, ``v = a = pitch = 0``; a non-yielding vehicle
  keeps ``v0`` and ``x = start - v0 t`` goes negative once it passes the crosswalk.
"""

from __future__ import annotations

import math

import numpy as np

from discern.nureality.scenarios import Scenario, load_scenario

DEFAULT_DT = 1.0 / 60.0  # 60 Hz, the browser's usual frame rate (assumption)


def stopping_distance(v: float, a: float) -> float:
    """Distance to stop from speed ``v`` (m/s) at constant deceleration ``a`` (m/s^2): ``v^2 / (2 a)``."""
    if a <= 0:
        raise ValueError(f"deceleration must be > 0, got {a}")
    return v * v / (2.0 * a)


def braking_times(scenario) -> tuple[float, float] | None:
    """``(t_onset, T)``: brake onset after vehicle onset and braking duration, in s; None without braking."""
    sc = load_scenario(scenario)
    if sc.braking is None:
        return None
    dist = sc.braking.onset_distance_m - sc.stop_distance_m
    return (sc.start_distance_m - sc.braking.onset_distance_m) / sc.v0_mps, 2.0 * dist / sc.v0_mps


def key_times(scenario) -> dict[str, float | None]:
    """``brake_onset``, ``stop`` (s after vehicle onset; None without braking) and ``reach_crosswalk``
    (when the bumper reaches the crosswalk's near edge; None for a vehicle that stops before it)."""
    sc = load_scenario(scenario)
    bt = braking_times(sc)
    if bt is None:
        return {"brake_onset": None, "stop": None, "reach_crosswalk": sc.start_distance_m / sc.v0_mps}
    return {"brake_onset": bt[0], "stop": bt[0] + bt[1], "reach_crosswalk": None}


def peak_deceleration(scenario) -> float:
    """Largest deceleration over the braking (m/s^2): v0/T (linear, hard) or 1.5 v0/T (eased); 0 without."""
    sc = load_scenario(scenario)
    bt = braking_times(sc)
    if bt is None:
        return 0.0
    base = sc.v0_mps / bt[1]
    return 1.5 * base if sc.braking.profile == "eased" else base


def _states(sc: Scenario, t: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised state at times ``t`` (s since vehicle onset); mirrors ``stateAt`` in web/kinematics.js."""
    v0 = sc.v0_mps
    start = sc.start_distance_m
    x = start - v0 * t
    v = np.full_like(t, v0)
    a = np.zeros_like(t)
    pitch = np.zeros_like(t)
    if sc.braking is None:
        return {"x": x, "v": v, "a": a, "pitch": pitch}
    onset = sc.braking.onset_distance_m
    stop = sc.stop_distance_m
    dist = onset - stop
    big_t = 2.0 * dist / v0
    t_onset = (start - onset) / v0
    t_stop = t_onset + big_t
    braking = (t >= t_onset) & (t < t_stop)
    after = t >= t_stop
    u = (t[braking] - t_onset) / big_t
    if sc.braking.profile == "eased":
        vb = v0 * (1.0 - u * u * (3.0 - 2.0 * u))
        sb = v0 * big_t * (u - u * u * u + u * u * u * u / 2.0)
        decel = 6.0 * v0 / big_t * u * (1.0 - u)
        max_decel = 1.5 * v0 / big_t
    else:  # linear, hard
        vb = v0 * (1.0 - u)
        sb = v0 * big_t * (u - u * u / 2.0)
        decel = np.full_like(u, v0 / big_t)
        max_decel = v0 / big_t
    x[braking] = onset - sb
    v[braking] = vb
    a[braking] = -decel
    pitch[braking] = sc.braking.pitch_deg * (decel / max_decel)
    x[after] = stop
    v[after] = 0.0
    return {"x": x, "v": v, "a": a, "pitch": pitch}


def state_at(scenario, t: float) -> dict[str, float]:
    """``{"x", "v", "a", "pitch"}`` at ``t`` seconds after vehicle onset."""
    sc = load_scenario(scenario)
    s = _states(sc, np.array([float(t)]))
    return {k: float(s[k][0]) for k in ("x", "v", "a", "pitch")}


def n_frames(duration_s: float, dt: float) -> int:
    """Number of samples ``0, dt, 2 dt, ...`` up to ``duration_s`` inclusive (1e-9 slack for rounding)."""
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    return math.floor(duration_s / dt + 1e-9) + 1


def trajectory(scenario, dt: float = DEFAULT_DT) -> dict[str, np.ndarray]:
    """``{"t", "x", "v", "a", "pitch"}`` arrays sampled at ``t_i = i dt`` from 0 to ``duration_s``."""
    sc = load_scenario(scenario)
    t = np.arange(n_frames(sc.duration_s, dt), dtype=np.float64) * dt
    out = {"t": t}
    out.update(_states(sc, t))
    return out
