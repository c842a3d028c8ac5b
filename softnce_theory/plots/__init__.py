"""Proof-backed figures (``softnce plots``); see :mod:`softnce_theory.plots._core`."""

from softnce_theory.plots._core import (
    PALETTE,
    Figure,
    GateError,
    figure,
    figure_names,
    get_figure,
    make,
)

__all__ = ["PALETTE", "Figure", "GateError", "figure", "figure_names", "get_figure", "make"]
