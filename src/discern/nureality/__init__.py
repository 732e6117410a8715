"""nuReality in the browser (Schmitt et al. 2022, arXiv 2201.04742; companion study "Can Cars Gesture?",
IEEE RA-L 2022): an AV-pedestrian intent study platform with WebXR.

From the publications: a VR urban intersection where a pedestrian must decide when it is safe to cross in
front of an approaching (autonomous) vehicle that may or may not stop; 10 vehicle behaviour scenarios;
expressive cues of motion, sound and light; the measure is how quickly the pedestrian decides it is safe to
cross, with repeated subjective surveys; easing into a stop or stopping farther away gave quicker decisions.
Our reconstruction (assumption): every scenario number, the kinematic profiles, the simulated pedestrian and
the statistics; each module says which is which.

Modules: ``config`` (the reproduction's Config and presets), ``scenarios`` (the ten scenarios as validated
JSON), ``kinematics`` (position, speed, acceleration, pitch; the same formulas as ``web/kinematics.js``),
``pedestrian`` (a simulated pedestrian decision model), ``study`` (simulated pedestrians through the study
server over HTTP), ``analysis`` (reading trials, summaries, paired comparisons with baseline, the claims,
plot), ``design`` (trial plans), ``store`` and ``server`` (the study server), ``webassets`` (the browser
scene's vendored files).  Nothing heavy is
imported here, and nothing in this package imports torch.
"""

from discern.core.paper import Paper

PAPER = Paper("nureality", title="nuReality: A VR environment for research of pedestrian and autonomous vehicle interactions (2022)", package=__name__, number=10,
              data=())  # simulated pedestrians: no registry data

__all__ = ["config", "scenarios", "kinematics", "pedestrian", "study", "analysis", "design", "store", "server",
           "webassets"]
