"""multinet: a multi-network CNI meta-plugin for Kubernetes.

Its packages, each a layer importing only those below it (docs/architecture.md):

cli/        multinetctl, the admin command line
daemon/     multinetd, the thick-mode node daemon
webhook/    multinet-webhook, the admission webhook for NADs
authoring/  NAD authoring help: plugin schemas, cross-key checks (never on the per-pod path)
meta/       the verbs (ADD, DEL, CHECK, GC, STATUS, a running pod's change) and the composition root
thin/       the `multinet` CNI executable
ipam/       multinet-ipam, the cluster-wide IPAM plugin; its pools kept in the Kubernetes API
networks/   the Kubernetes network model, pure rules over data
engine/     run a plan: ADD/DEL/CHECK/GC/STATUS, the journal, the pod's namespace
cluster/    where pods and NADs come from and where network status goes
config/     multinet's own configuration: netconf, schema validator, logging
cni/        the CNI protocol: requests, errors, results, delegate execution
shim/       thick mode's shim protocol and a client for the daemon's socket
schemas/    JSON schema files (data) and their loader
plugins/    CNI plugins multinet ships, each its own executable
log         the `multinet` logger: `logging`'s, or thin mode's writer of the same lines
record      record classes without `dataclasses` (thin mode's per-call path)
"""

__version__ = "0.1.0"
