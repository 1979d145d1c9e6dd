"""What the people running a relay need: relay keys with budgets, the usage ledger, the admin API."""
