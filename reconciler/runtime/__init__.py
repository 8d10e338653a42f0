"""The container-runtime port: Docker for real, an in-memory fake for tests and benchmarks."""
