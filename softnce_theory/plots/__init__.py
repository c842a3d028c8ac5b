"""Proof-backed figures (``softnce plots``); see :mod:`softnce_theory.plots._core`."""

from softnce_theory.plots._core import FIGURES, PALETTE, Figure, GateError, figure, get_figure, make

__all__ = ["FIGURES", "PALETTE", "Figure", "GateError", "figure", "get_figure", "make"]
