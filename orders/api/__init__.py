"""Livra's REST API (``/api/``): thin views over the orders and messaging services.

Every call needs a user (token or session) and sees only the stores that user is a member of;
a store, order, customer or message of another store does not exist as far as the API says.
"""
