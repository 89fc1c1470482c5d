"""multinet's own configuration: the typed netconf, its schema validator, logging set-up."""
