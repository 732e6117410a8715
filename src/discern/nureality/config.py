"""Configuration of the nuReality reproduction (Schmitt et al. 2022; companion RA-L 2022 study): how many
simulated pedestrians go through the study server, how often each sees every scenario, the trial order
and the post-trial Likert items; presets ``tiny`` (tests), ``quick`` (``discern reproduce``) and
``paper`` (the companion study's 60 participants)."""

from __future__ import annotations

from dataclasses import dataclass, field

from discern.core.config import check_choices, check_ranges
from discern.core.errors import ConfigError

LIKERT = ("The vehicle's intention was clear to me.", "I felt safe deciding to cross.")


@dataclass
class Config:
    participants: int = 40
    repetitions: int = 1
    order: str = "latin"
    seed: int = 0
    batch: int = 3  # events per POST
    likert: list[str] = field(default_factory=lambda: list(LIKERT))
    alpha: float = 0.05  # level of the claims' tests

    def __post_init__(self) -> None:
        """A value no run can use is a one-line ConfigError before any work (preset, --config, --set)."""
        check_ranges(self, {"participants": "[1, 10000]", "repetitions": "[1, 100]", "batch": "[1, inf)",
                            "alpha": "(0, 1)"})
        check_choices(self, {"order": ("latin", "random")})
        if not self.likert:
            raise ConfigError("config key 'likert' must name at least one item")


def quick() -> Config:
    return Config()


def paper() -> Config:
    """60 pedestrians, as in the companion study's talk abstract; two repetitions of each scenario."""
    return Config(participants=60, repetitions=2)


def tiny() -> Config:
    return Config(participants=4)


PRESETS = {"tiny": tiny, "quick": quick, "paper": paper}
