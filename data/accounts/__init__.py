"""Accounts: users and kiosks, API keys, and the audited administration of the catalogue (departments, categories, lists)."""
