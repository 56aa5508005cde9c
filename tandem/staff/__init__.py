"""Staff and owner accounts: passwords, login sessions, login throttling and the audit log."""
