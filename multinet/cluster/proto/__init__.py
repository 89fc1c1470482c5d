"""The kubelet's PodResources and the runtime's CRI messages (generated: `make protos`).

api_pb2      the PodResources messages, from api.proto (protoc's output, committed, typed)
cri_api_pb2  the CRI RuntimeService messages, from cri_api.proto (the same)
"""
