"""multinet-webhook: the validating admission webhook for NADs (and, optionally, pods'
networks annotations). Its own small executable, run as a Deployment behind a Service:
not in multinetd, which is per node, on the host network and on the per-pod path.

review  AdmissionReview v1: one request in, one response out (no I/O)
server  the HTTPS server: POST /validate, GET /healthz
main    the `multinet-webhook` command line
"""
