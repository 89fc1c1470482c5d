"""CNI plugins multinet ships: each its own executable, importing only `multinet.cni`."""
