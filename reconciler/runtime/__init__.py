"""The container-runtime port: Docker for real, an in-memory fake for tests and benchmarks.

`base` holds the port (`ContainerRuntime`) and its values, `errors` the one exception
hierarchy; `docker.DockerRuntime` and `memory.MemoryRuntime` implement it (import them from
their modules: the Docker one pulls in the docker SDK). The node agent decides; a runtime
only does what it is told.
"""
