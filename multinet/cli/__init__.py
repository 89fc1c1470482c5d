"""multinetctl: the admin command line.

multinetctl   the entry point: inspect what multinet attached on this node
daemonctl     thick-mode subcommands: ask the daemon over its socket, install the shim
install       install thick mode's executables (the native shim) in a CNI bin directory
nadctl        authoring subcommands: NADs, the networks annotation, webhook certificates
webhookcerts  a self-signed CA and the webhook's serving certificate (openssl)
"""
