"""multinet-ipam: cluster-wide IP address management, its store the Kubernetes API.

An IPAM plugin of its own (the `multinet-ipam` executable), usable in any NAD's `ipam`,
that reads whereabouts' keys unchanged (docs/ipam.md).

ranges   a range as offsets of its subnet: bounds, exclusions, the lowest free offset
config   the `ipam` object: whereabouts' keys, static requests, parsed in one place
pools    the IPPool objects: allocate and release with optimistic concurrency
records  the node's note of an attachment's pools (what a DEL without the API needs)
plugin   cmd_add, cmd_del, cmd_check, cmd_gc and main
"""
