"""Durable SQLite storage with a global revision counter, optimistic concurrency and watch."""
