"""discern: ten machine-learning papers, implemented and reproduced."""

__version__ = "0.1.0"
