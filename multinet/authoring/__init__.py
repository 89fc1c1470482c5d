"""Authoring help for NetworkAttachmentDefinitions: the plugin schemas (jsonschema), the
checks across keys, NAD documents, the networks annotation. Used by multinetctl and the
admission webhook, never on the per-pod path (jsonschema costs ~100 ms to import)."""
