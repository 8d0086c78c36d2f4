"""Side-by-side benchmarks (`make bench`); not part of `make test`."""
