"""Git sources: fetch, checkout, revision resolution, hosted bare repos and their hooks."""
