"""Where pods and NADs come from and where network status goes."""
