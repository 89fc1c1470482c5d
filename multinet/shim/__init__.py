"""Thick mode's client side in Python: the shim protocol and a client for the daemon's socket.

The shim itself is native (shim/, Rust): it implements `protocol` (docs/shim-protocol.md).
Standard library only (held by an import contract).

protocol  the shim protocol, version 1: the one place the shim and the daemon read it from
client    a client for the daemon's socket (multinetctl, the tests)
"""
