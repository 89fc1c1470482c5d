"""Thin mode: the `multinet` CNI executable, the composition root wiring a source to the engine."""
