"""The store of record: models, sessions, services that write events with their changes."""
