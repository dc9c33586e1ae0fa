"""Command line: `ecr-cache-bot` and its process commands."""
