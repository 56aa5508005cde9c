"""The business a Tandem install serves: its profile (business.yml), data and rules.

Nothing here is specific to one shop: facts and wording come from `business.yml`,
customers, orders and bookings from the database.
"""
