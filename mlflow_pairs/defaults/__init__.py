"""Default configuration files, shipped in the wheel (links to config/ in a checkout)."""
