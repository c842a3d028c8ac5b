"""pytest plugin entry point (``pytest11``): fixtures and markers for guarding a user's loss."""
