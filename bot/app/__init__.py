"""The GitHub App's behaviour: routing, job payloads, the PR lifecycle, handlers, install fan-out."""
