"""The Quarantine component: only records that Transform can use go past ImportExampleGen."""
