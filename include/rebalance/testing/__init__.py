"""Test helpers that other suites reuse: broker emulators, fixtures data."""
