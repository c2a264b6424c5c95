"""Accounts: users and kiosks (users.py), API keys (apikeys.py), and the audited administration of the catalogue, keys and users (admin/)."""
