// The module exists for its header.
