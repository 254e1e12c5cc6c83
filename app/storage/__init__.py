"""Storage: MongoDB client and embedded server, retry and guards, the writer, the local outbox, probe."""
