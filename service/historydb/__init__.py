"""The claim-history database of the cross-claim rules (PostgreSQL through asyncpg).

`schema` applies the versioned migrations shipped in `migrations/`; `store` records a batch of
claims and returns each one's history in one round trip; `gate` is what the Kafka shell calls:
the store with its backoff, readiness and give-up bound.
"""
