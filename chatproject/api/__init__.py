"""Shared REST API plumbing: the error body and pagination."""
