"""Broker adapters behind one small interface (``base.Broker``)."""
