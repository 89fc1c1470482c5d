"""The kubelet PodResources API messages (generated from api.proto: `make protos`).

api_pb2  the generated messages (protoc's output, committed; typed by api_pb2.pyi)
"""
