"""The Notification Service: durable event log with push delivery and resumable listeners."""
