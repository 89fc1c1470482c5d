"""The CNI protocol: requests, errors, results, delegate execution. Knows nothing of Kubernetes."""
