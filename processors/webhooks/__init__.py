"""Completion webhooks: ``python -m processors.webhooks`` POSTs final task statuses, signed.

A process of its own, consuming ``task.status`` in its own consumer group: a slow or dead
receiver delays only webhook deliveries, never transcription (the workers neither read
``task.status`` nor wait on this process). See :mod:`processors.webhooks.deliverer`.
"""
