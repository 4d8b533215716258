"""Code the API and the workers both need: settings parts, S3 and Kafka access, logging."""
