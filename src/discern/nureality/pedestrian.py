"""A simulated pedestrian who watches the approaching vehicle and signals "safe to cross".

From the publications: participants stand at an urban crosswalk while a vehicle approaches that may or
may not stop; the study records **how quickly the pedestrian decides it is safe to cross** (relative to
the vehicle's onset), and expressive behaviours such as **easing into a full stop** or **stopping farther
away** lead to **quicker decisions**.

Everything in this module is our reconstruction (assumption): a small evidence-accumulation observer in
the spirit of drift-diffusion models of road-crossing decisions, not fitted to any data.  At every frame
(60 Hz) from vehicle onset the pedestrian

1. **perceives** the bumper-to-crosswalk distance, speed and pitch with Gaussian noise whose standard
   deviation is proportional to the value (Weber-like: ``x_hat = x (1 + w_x e)``, ``v_hat = v (1 + w_v e)``,
   ``pitch_hat = pitch (1 + w_p e)``; a stationary vehicle is seen stationary);
2. **estimates the deceleration** ``a_hat`` as minus the least-squares slope of ``v_hat`` over the last
   ``window_s`` seconds; the vehicle is *seen braking* when ``a_hat > min_decel`` (``a_used = a_hat``, else 0);
3. **predicts the stopping point** ``x_stop = x_hat - v_hat^2 / (2 a_used)`` (minus infinity, danger,
   when not seen braking; ``x_hat`` when seen stopped) and weighs it by the deceleration that stopping
   ``margin_m`` before the crosswalk needs, ``a_req = v_hat^2 / (2 (x_hat - margin_m))``:
   ``e_stop = clip((a_used - a_req) / decel_ref, -1, 1)``, whose sign is that of ``x_stop - margin_m``
   (``a_used - a_req = a_used (x_stop - margin_m) / (x_hat - margin_m)``); a fast vehicle close to the
   crosswalk that does not brake gives -1, one still far away a milder danger signal;
4. **accumulates evidence** ``E <- max(0, E + drift dt + noise sqrt(dt) N(0, 1))`` with
   ``drift = k_stop e_stop + k_decel min(a_used, decel_cap) / decel_ref + k_pitch pitch_hat + cues``:
   a predicted stop short of the crosswalk and visible slowing count for yielding;
5. signals **safe** when ``E >= threshold_p`` (the participant's own threshold, log-normal around
   ``threshold`` with sd ``threshold_sd``: some people are more cautious, in every scenario), or by the
   **time-to-arrival rule** when the vehicle is far and slow: ``x_hat >= margin_m`` and (seen stopped,
   or ``v_hat <= slow_speed`` and ``x_hat / v_hat >= tta_safe_s``);
6. gives up once the bumper reaches the crosswalk (``x_hat <= 0``): the judgement is about crossing in
   front of the approaching vehicle, so a vehicle that drives through is never "safe" (decision None).

Cues (assumption): from brake onset, a light bar adds ``k_light_bar``, an exaggerated braking sound
``k_brake_sound`` and a low-frequency cue ``k_low_frequency`` to the drift; a visible human driver adds
``k_driver`` (0 by default: the sources say nothing about it).  No scenario id appears in the model:
earlier deceleration gives earlier evidence and a farther stop a larger surplus, so the ordering of the
decision times follows from the kinematics.  The crossing decision is "cross" exactly when the pedestrian
signalled safe.  The defaults were set by hand over a small grid (``k_decel``, ``k_stop``, ``threshold``,
``noise``, ``window_s``) so that false alarms before brake onset are rare and a vehicle that keeps its speed
is not judged safe; what each scenario then yields is an outcome, not an input.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, replace

import numpy as np

from discern.nureality.kinematics import DEFAULT_DT, braking_times, trajectory
from discern.nureality.scenarios import Scenario, load_scenario


@dataclass(frozen=True)
class PedestrianParams:
    """Parameters of the simulated pedestrian (all assumptions; units in the names)."""

    weber_distance: float = 0.05  # sd of perceived distance / distance
    weber_speed: float = 0.05  # sd of perceived speed / speed
    weber_pitch: float = 0.2  # sd of perceived pitch / pitch
    window_s: float = 0.75  # deceleration estimated over the last 0.75 s
    min_decel: float = 0.3  # m/s^2; below this the vehicle is not seen braking
    stopped_speed: float = 0.3  # m/s; slower than this the vehicle is seen stopped
    margin_m: float = 1.0  # the vehicle must stop at least this far before the crosswalk
    k_stop: float = 1.0  # drift per unit of stop-point evidence (1/s)
    k_decel: float = 2.0  # drift per unit of deceleration evidence (1/s)
    decel_ref: float = 2.5  # m/s^2 that counts as one unit of evidence (a comfortable stop)
    decel_cap: float = 4.0  # m/s^2; larger estimates are clipped
    k_pitch: float = 0.1  # drift per perceived degree of nose-down pitch (1/s)
    k_light_bar: float = 0.15  # drift added from brake onset (1/s)
    k_brake_sound: float = 0.1  # drift added from brake onset (1/s)
    k_low_frequency: float = 0.05  # drift added from brake onset (1/s)
    k_driver: float = 0.0  # drift added from brake onset (1/s); no effect assumed
    noise: float = 0.3  # diffusion noise of the accumulator (1/sqrt(s))
    threshold: float = 1.5  # the median participant's threshold
    threshold_sd: float = 0.2  # between-participant sd of log(threshold): some are more cautious
    tta_safe_s: float = 4.0  # first-order time to arrival x/v that counts as "far" ...
    slow_speed: float = 3.0  # m/s; ... and this slow counts as "slow"
    dt: float = DEFAULT_DT

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One simulated trial: seconds from vehicle onset to "safe" (None: never safe) and the crossing choice."""

    scenario: str
    participant_seed: int
    decision_time_s: float | None
    cross: bool
    rule: str | None  # "evidence", "time_to_arrival" or None


def _rng(participant_seed: int, scenario_id: str, repetition: int) -> np.random.Generator:
    return np.random.default_rng([int(participant_seed), zlib.crc32(scenario_id.encode("utf-8")), int(repetition)])


def _slope_weights(n: int, dt: float) -> np.ndarray:
    """Weights w with sum(w * y) = least-squares slope of y sampled every dt (n samples)."""
    t = np.arange(n, dtype=np.float64) * dt
    c = t - t.mean()
    return c / float(np.sum(c * c))


def simulate(scenario: Scenario | dict | str, participant_seed: int, params: PedestrianParams | None = None,
             repetition: int = 0) -> Decision:
    """Simulate one participant (``participant_seed``) watching one scenario; deterministic for a seed.

    The random stream depends on the seed, the scenario id and the repetition, so the same participant
    gets independent perceptual noise in each scenario and repetition.
    """
    sc = load_scenario(scenario)
    p = params or PedestrianParams()
    threshold = participant_threshold(participant_seed, p)
    rng = _rng(participant_seed, sc.id, repetition)
    tr = trajectory(sc, p.dt)
    n = len(tr["t"])
    ex, ev, ep, ea = rng.standard_normal((4, n))
    x_hat = tr["x"] * (1.0 + p.weber_distance * ex)
    v_hat = np.maximum(tr["v"] * (1.0 + p.weber_speed * ev), 0.0)
    pitch_hat = np.maximum(tr["pitch"] * (1.0 + p.weber_pitch * ep), 0.0)
    win = max(2, int(round(p.window_s / p.dt)))
    weights = _slope_weights(win, p.dt)

    bt = braking_times(sc)
    cue = 0.0
    if sc.vehicle.light_bar:
        cue += p.k_light_bar
    if sc.sound.brake == "exaggerated":
        cue += p.k_brake_sound
    if sc.sound.low_frequency_cue:
        cue += p.k_low_frequency
    if sc.vehicle.driver_visible:
        cue += p.k_driver

    evidence = 0.0
    sq = math.sqrt(p.dt)
    for i in range(n):
        t = float(tr["t"][i])
        x, v = float(x_hat[i]), float(v_hat[i])
        if x <= 0.0:
            break
        seen_stopped = v <= p.stopped_speed
        if x >= p.margin_m and (seen_stopped or (v <= p.slow_speed and x / v >= p.tta_safe_s)):
            return Decision(sc.id, participant_seed, t, True, "time_to_arrival")
        a_hat = -float(np.dot(weights, v_hat[i - win + 1:i + 1])) if i + 1 >= win else 0.0
        a_used = a_hat if a_hat > p.min_decel else 0.0
        if x <= p.margin_m:
            e_stop = -1.0
        else:
            a_req = v * v / (2.0 * (x - p.margin_m))
            e_stop = min(1.0, max(-1.0, (a_used - a_req) / p.decel_ref))
        drift = (p.k_stop * e_stop + p.k_decel * min(a_used, p.decel_cap) / p.decel_ref
                 + p.k_pitch * float(pitch_hat[i]))
        if bt is not None and t >= bt[0]:
            drift += cue
        evidence = max(0.0, evidence + drift * p.dt + p.noise * sq * float(ea[i]))
        if evidence >= threshold:
            return Decision(sc.id, participant_seed, t, True, "evidence")
    return Decision(sc.id, participant_seed, None, False, None)


def participant_threshold(participant_seed: int, params: PedestrianParams | None = None) -> float:
    """The participant's evidence threshold: ``threshold * exp(threshold_sd * z)``, z drawn from the seed alone."""
    p = params or PedestrianParams()
    z = float(np.random.default_rng([int(participant_seed), 0x7E5]).standard_normal())
    return p.threshold * math.exp(p.threshold_sd * z)


def simulate_study(scenarios, n_participants: int = 40, repetitions: int = 1, seed: int = 0,
                   params: PedestrianParams | None = None) -> list[dict]:
    """Trial records (the shape ``analysis`` reads) for ``n_participants`` simulated pedestrians.

    Participant ``j`` has seed ``seed * 100003 + j``; labels are ``P01, P02, ...``.
    """
    scs = [load_scenario(s) for s in scenarios]
    rows = []
    for j in range(n_participants):
        pseed = seed * 100003 + j
        for rep in range(repetitions):
            for sc in scs:
                d = simulate(sc, pseed, params, repetition=rep)
                rows.append({"participant": f"P{j + 1:02d}", "scenario": sc.id, "repetition": rep,
                             "decision_time_s": d.decision_time_s, "cross": d.cross, "likert": {}})
    return rows


def with_params(params: PedestrianParams | None = None, **changes) -> PedestrianParams:
    """A copy of ``params`` (default parameters when None) with some fields changed."""
    return replace(params or PedestrianParams(), **changes)
