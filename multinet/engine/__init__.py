"""Run a plan: the engine and what it needs, with its I/O behind small seams.

engine        the seams of one host; a sandbox under its lock; GC and STATUS across sandboxes
sandbox       one sandbox's steps: adding (with rollback), remove_all, check, attach, detach...
plan          attachments (what to run, on which interface) and the static plan
journal       the crash-safe record of what was attached, and its store
dynamic       a change of a running pod's networks: what is asked, what came of it
ports         the seams: journal store, pod network namespace, delegate executor, releases, gate
routes        default-route moves (pure)
dhcp          the DHCP client daemon's sockets a plan needs, probed; a DHCP network's ADD bound
delegates     the delegate executor over cni.chain and cni.exec, and parallel batches
netns         network-namespace operations without a netlink library
netlink       the operations that need netlink (pyroute2; the only module importing it)
multus_cache  Multus's cache of the pods it attached, read by a DEL (engine.ports.LegacyRecords)
releases      the releases a DEL skipped (its delegates' DEL failed), kept until done
gate          the host's GC gate: ADDs hold it shared, a CNI GC alone
"""
