"""Where pods and NADs come from and where network status goes.

base          the Cluster protocol (the one interface to pods and NADs), Pod, NAD
api           the Kubernetes API as a Cluster: paths, error mapping, retries
rest          its standard-library client (thin mode's)
http11        rest's minimal HTTP/1.1 connection (and the watches' streams)
apiserver     the API server as a Cluster, its client picked and built on first use
kube          the API server through the official `kubernetes` client
kubeconfig    where the API server is and how to authenticate: kubeconfig or service account
credentials   credentials that rotate on disk: token files, files stamped, read again
manifests     a cluster without Kubernetes: pods and NADs from a directory of YAML
cache         watch-backed caches of NADs and of this node's pods (multinetd)
shared        multinetd's API client: rest shared by threads, with list and watch
objects       pods and NADs from API or manifest objects, checked as user input
records       local records of network-status and events under `<cniDir>/status/`
podresources  the kubelet's device assignments: PodResources gRPC, or its checkpoint
cri           the container runtime's pod sandboxes: CRI RuntimeService gRPC, a child's main
runtime       the same asked in a short-lived child process (multinetd's GC: no grpc kept)
proto/        the kubelet's PodResources and the runtime's CRI messages (generated)
"""
