"""A tiny Flask API used as a build-benchmark sample."""
