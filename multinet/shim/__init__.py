"""Thick mode's client side in Python: the shim protocol and a client for the daemon's socket.

The shim itself is native (shim/, Rust): it implements `protocol` (docs/shim-protocol.md).
`client` is what multinetctl and the tests use to talk to the daemon. Standard library
only (held by an import contract).
"""
