"""multinet-sriov: an SR-IOV VF CNI plugin with sriov-cni's configuration keys.

config (loadNetConf), sysfs (PF, VF index, VF netdev, driver), backend (the VF settings
on the PF: one small interface; a file-backed table for tests and machines without
SR-IOV), netlink (the pyroute2 backend and the link moves), state (the cache and the
allocation records), plugin (cmdAdd, cmdDel, cmdCheck and main). See docs/sriov.md.
"""
