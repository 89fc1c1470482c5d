"""Run a plan: the engine and what it needs, with its I/O behind small seams.

engine        ADD/DEL/CHECK/GC/STATUS over the planned networks, rollback
dispatch      one CNI request in, one reply out: the error boundary thin mode and the daemon share
plan          attachments (what to run, on which interface) and the static plan
journal       the crash-safe record of what was attached, and its store
ports         the seams: journal store, pod network namespace, delegate executor
routes        default-route moves (pure)
netns         network-namespace operations without a netlink library
netlink       the operations that need netlink (pyroute2; the only module importing it)
delegates     the real delegate executor, one by one or all at once
hotplug       attach and detach networks of a running sandbox (dynamic networks)
multus_cache  Multus's cache of the containers it attached, read as journals
"""
