"""Where records come from, each source in its own folder, all written through `core.store`."""
