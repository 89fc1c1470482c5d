"""multinet-sriov: an SR-IOV VF CNI plugin with sriov-cni's configuration keys.

config   the netconf: sriov-cni's keys, parsed and validated in one place (loadNetConf)
sysfs    a VF's PF, index, netdev and driver, found in sysfs
backend  the VF settings on the PF: one small interface; a file-backed table for tests
netlink  the pyroute2 backend and the VF netdev's moves
state    the cache and the allocation records under `cniDir`
plugin   cmd_add, cmd_del, cmd_check, cmd_status and main

See docs/sriov.md.
"""
