"""Thin servicers: convert the request, call a service with the call's project, convert back."""
