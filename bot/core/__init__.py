"""Pure core: text and frozen dataclasses in, text and dataclasses out; no I/O."""
