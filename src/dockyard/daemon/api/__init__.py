"""daemon/api."""
