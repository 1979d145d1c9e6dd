"""Everything that outlives a request: file metadata, counters. One interface, several backends."""
