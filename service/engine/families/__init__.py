"""One module per rule family; each exposes `RULE_IDS` and `check(claim, table)`."""
