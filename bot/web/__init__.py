"""HTTP: the pure webhook intake and the thin Flask and ASGI shells over it."""
