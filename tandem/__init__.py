"""Tandem's core: settings, storage and the business and conversation services.

The gateway (`bot/`) and the custom actions (`actions/`) both build on this package;
it has no web code.
"""
