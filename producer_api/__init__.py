"""The HTTP API: accepts recordings and submissions, publishes AudioSubmitted, serves status."""
