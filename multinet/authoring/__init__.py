"""Authoring help for NetworkAttachmentDefinitions: the plugin schemas (jsonschema), the
checks across keys, NAD documents, the networks annotation. Used by multinetctl and the
admission webhook, never on the per-pod path (jsonschema costs ~100 ms to import).

annotation   the networks annotation as ADD reads it, and the NADs it names
configcheck  a CNI config or conflist checked against the plugin schemas and cross-key rules
nad          NAD documents: validate, create, explain plugin keys
"""
