"""multinetd, the thick-mode node daemon: serves the shim's CNI requests on a unix socket.

config      the daemon's configuration file
admission   bounded work: two lanes (ADD, the rest), limits, a FIFO queue with a deadline,
            and memory-aware admission (the cgroup's headroom)
memcg       the daemon's own memory cgroup (v1 or v2): limit, usage, working set
service     one forwarded CNI request, run with the shared dispatcher and engine
server      HTTP/1.1 over the unix socket (the shim protocol + control API) and the metrics port
confgen     writes 00-multinet.conflist next to the primary CNI config
hostcreds   keeps the daemon's token and a kubeconfig on the host for the shim's fallback
metrics     Prometheus text metrics
logfmt      structured log lines with the request's pod and container
multus_api  Multus's thick-plugin API, for Multus's own multus-shim
delegate    Multus's `POST /delegate` (multus-dynamic-networks-controller)
dhcpd       the supervised reference DHCP client daemon
dynamic     the dynamic-networks controller: running pods follow their annotation
workqueue   its work queue (client-go's shape): per-key interval and back-off
gc          GC from the runtime's own truth: gone sandboxes DELed, skipped releases, CNI GC
lifecycle   start, readiness, graceful shutdown
main        the `multinetd` command line
"""
