"""Operations: backup, restore, reset, erase and the import of the old bots' data."""
