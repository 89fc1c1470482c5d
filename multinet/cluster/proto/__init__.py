"""The kubelet PodResources API messages (generated from api.proto: `make protos`)."""
