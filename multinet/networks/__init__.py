"""The Kubernetes network model (NPWG and Multus semantics), pure rules over data.

selection    the networks and default-network annotations
resolve      network references -> network configs (NADs, confDir, paths)
attachments  selections -> the engine's attachments (interface names, runtime values)
devices      device-plugin resources: device IDs -> attachments, NPWG device-info
planner      a pod's plan, read through a Cluster
reporter     the outcome told to the cluster: network-status, events
status       network-status entries from what the journal recorded
dynamic      the networks a running pod gains and loses when its annotation changes
"""
