"""Optional apps that sites add to ``INSTALLED_APPS`` when they need them."""
