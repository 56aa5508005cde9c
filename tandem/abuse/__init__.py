"""Abuse limits on the customer side: how often a client may start conversations, send
messages and frames, and try order look-ups (see service.py)."""
