"""CNI plugins multinet ships: each its own executable, importing only `multinet.cni`.

sriov/  multinet-sriov, an SR-IOV VF plugin with sriov-cni's keys (docs/sriov.md)
"""
