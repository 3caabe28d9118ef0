"""Pure value types and the exchange's numeric rules. Nothing here does I/O."""
