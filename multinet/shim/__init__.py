"""Thick mode's client side: the shim protocol, a client for the daemon's socket, the Python shim.

Standard library only (held by an import contract): the shim's hot path runs once per pod.
"""
