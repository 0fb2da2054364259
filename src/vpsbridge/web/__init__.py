"""The outer web ring: the FastAPI app factory (:mod:`vpsbridge.web.app`) and its routers.

Nothing in vpsbridge imports this package; it talks to ``services`` and ``jobs`` only.
"""
