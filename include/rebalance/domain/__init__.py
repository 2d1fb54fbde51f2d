"""The domain layer: the words every other layer shares (see docs/architecture.md)."""
