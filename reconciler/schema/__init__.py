"""JSON Schemas: the upstream Kubernetes schemas, CRD schemas, validation and patch metadata."""
