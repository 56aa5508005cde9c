"""Tandem's custom actions for Rasa (run with `python -m rasa_sdk --actions actions`).

Every business fact and every business reply comes from business.yml (through
`tandem.business.profile`) and the database (through `tandem.business.service`).
"""

from actions import bookings, follow_up, handoff, help, info, orders, products

__all__ = ["bookings", "follow_up", "handoff", "help", "info", "orders", "products"]
