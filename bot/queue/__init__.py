"""The durable runtime: queue, ledger and dedupe, locks, pacing, retry, storage, counters."""
