"""Conversations: storage, the state machine and the service that records every change."""
