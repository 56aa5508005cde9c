"""Canned replies: short texts the owner writes once and staff insert into chats."""
