"""multinetd, the thick-mode node daemon: serves the shim's CNI requests on a unix socket.

config     the daemon's configuration file
service    one forwarded CNI request, run with the shared dispatcher and engine
server     HTTP/1.1 over the unix socket (the shim protocol + control API) and the metrics port
confgen    writes 00-multinet.conflist next to the primary CNI config
metrics    Prometheus text metrics
logfmt     structured log lines with the request's pod and container
lifecycle  start, readiness, graceful shutdown
main       the `multinetd` command line
"""
