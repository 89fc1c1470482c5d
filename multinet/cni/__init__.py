"""The CNI protocol: requests, errors, results, delegate execution. Knows nothing of Kubernetes.

request     a CNI invocation (environment + stdin) parsed into a typed request
errors      one exception tree for everything multinet reports, mapped to CNI error codes
result      Success results as typed models, read and written in every spec version
version     the spec versions multinet speaks, their order and operation gates
chain       network configurations (single or conflist) run as plugin chains
exec        find a plugin by `type` and run it with the CNI protocol
ifname      interface-name rules (libcni's checks)
strictjson  strict JSON for everything read from outside, as libcni reads it
"""
