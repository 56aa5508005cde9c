"""The bot gateway: customer API, WebSocket and pages; it wires Rasa, sentiment and handoff.

`bot.rasa_channel` is loaded by the Rasa server (Python 3.10); keep this file import-free.
"""
