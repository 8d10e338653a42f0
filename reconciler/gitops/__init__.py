"""The Application resource: plan, apply order, health, sync status, history, self-heal."""
