"""multinetctl: the admin command line."""
