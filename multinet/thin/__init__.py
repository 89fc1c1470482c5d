"""Thin mode: the `multinet` CNI executable, the composition root wiring a source to the engine.

main    the `multinet` executable: environment + stdin in, result or error JSON out
wiring  the composition root: an engine for a configuration, its seams and source
"""
