"""HTTP in: the webhook the platform posts to, and health endpoints."""
