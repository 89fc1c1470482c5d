"""multinet-webhook: the validating admission webhook for NADs (and, optionally, pods'
networks annotations). Its own small executable, run as a Deployment behind a Service:
not in multinetd, which is per node, on the host network and on the per-pod path."""
