"""Alembic migrations, shipped inside the package so a wheel install can migrate (see ``store.migrate``)."""
