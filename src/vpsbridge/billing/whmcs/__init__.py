"""WHMCS: the bridge request handlers, request signing, idempotency and the WHMCS API client."""
