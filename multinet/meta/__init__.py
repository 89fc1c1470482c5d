"""The meta-plugin's verbs, above the Kubernetes network model and the engine.

verbs     ADD, DEL, CHECK, GC, STATUS, each told top-down: plan, run the engine's steps, report
dynamic   a running pod's change (dynamic networks), and Multus's /delegate requests
dispatch  one CNI request in, one reply out: the error boundary thin mode and the daemon share
wiring    the composition root of the `multinet` executable, multinetd and multinetctl
"""
