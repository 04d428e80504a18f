"""Deployment files and the tools that render them (docs/operations.md)."""
