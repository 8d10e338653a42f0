"""On-demand benchmarks (`make bench`): each next to a peer measured in the same run."""
