"""Thin mode: the `multinet` CNI executable, answering each call in-process.

main  the executable: the dispatcher (meta.dispatch) with the verbs the composition
      root (meta.wiring) builds for the call's netconf
"""
