-- The claim history of the cross-claim rules. No raw member ID, name or birth date: a member is
-- the HMAC-SHA256 of (payer id, member id) under a secret the database never sees; each claim
-- keeps only what the rules compare (codes, modifiers, dates, units, place of service, charge,
-- NPIs) as a JSON array of lines.
CREATE TABLE claims_history.claims (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- first sighting: a claim's history is the claims with a smaller seq
    event_id        text        NOT NULL UNIQUE,
    member_key      bytea       NOT NULL,
    claim_id        text        NOT NULL,
    content_key     text        NOT NULL,
    first_date      date        NOT NULL,
    last_date       date        NOT NULL,
    lines           jsonb       NOT NULL,
    superseded_seq  bigint,
    -- seq of the correction (same claim_id, another event) that replaced this version
    stored_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX claims_member ON claims_history.claims (member_key, last_date);
CREATE INDEX claims_versions ON claims_history.claims (claim_id, seq);
CREATE INDEX claims_age ON claims_history.claims (last_date);

-- One batch in one call (one round trip), set-based: a few statements whatever the batch size.
-- 1. Per-member transaction-scoped advisory locks, in sorted order so two instances never
--    deadlock: a member's claims are recorded and read by one transaction at a time.
-- 2. The batch's events, in batch order (the function scan yields rows in ordinality order):
--    a new event gets the next seq, a redelivered one keeps its own.
-- 3. Each version of a batch's claim ids still current is superseded by the next version of its
--    claim id (a correction: another event of the same claim id).
-- 4. Per event, its seq and the claims of its member first seen before it, in the version
--    current as of its seq, whose dates come within p_window_days of its own.
CREATE FUNCTION claims_history.record_batch(
    p_event_ids text[], p_member_keys bytea[], p_claim_ids text[], p_content_keys text[],
    p_first_dates date[], p_last_dates date[], p_lines jsonb[], p_window_days integer
) RETURNS TABLE (idx integer, seq bigint, history jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lock_key bigint;
BEGIN
    FOR lock_key IN
        SELECT DISTINCT ('x' || encode(substring(m FROM 1 FOR 8), 'hex'))::bit(64)::bigint AS k
        FROM unnest(p_member_keys) AS m ORDER BY k
    LOOP
        PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;

    INSERT INTO claims_history.claims
        (event_id, member_key, claim_id, content_key, first_date, last_date, lines)
    SELECT b.e, b.m, b.c, b.k, b.f, b.l, b.j
    FROM unnest(p_event_ids, p_member_keys, p_claim_ids, p_content_keys, p_first_dates,
                p_last_dates, p_lines) AS b(e, m, c, k, f, l, j)
    ON CONFLICT (event_id) DO NOTHING;

    UPDATE claims_history.claims AS c SET superseded_seq = n.next
    FROM (
        SELECT x.seq, (SELECT min(y.seq) FROM claims_history.claims AS y
                       WHERE y.claim_id = x.claim_id AND y.seq > x.seq) AS next
        FROM claims_history.claims AS x
        WHERE x.claim_id = ANY (p_claim_ids) AND x.superseded_seq IS NULL
    ) AS n
    WHERE c.seq = n.seq AND n.next IS NOT NULL;

    RETURN QUERY
        SELECT u.o::integer, c.seq, (
            SELECT jsonb_agg(jsonb_build_array(h.claim_id, h.seq, h.content_key, h.lines)
                             ORDER BY h.seq)
            FROM claims_history.claims AS h
            WHERE h.member_key = c.member_key
              AND h.seq < c.seq
              AND h.claim_id <> c.claim_id
              AND (h.superseded_seq IS NULL OR h.superseded_seq > c.seq)
              AND h.last_date >= c.first_date - p_window_days
              AND h.first_date <= c.last_date + p_window_days)
        FROM unnest(p_event_ids) WITH ORDINALITY AS u(e, o)
        JOIN claims_history.claims AS c ON c.event_id = u.e;
END;
$$;

-- Rows whose last date of service and whose storing are both older than p_keep_days.
CREATE FUNCTION claims_history.purge(p_keep_days integer) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    WITH gone AS (
        DELETE FROM claims_history.claims
        WHERE last_date < current_date - p_keep_days
          AND stored_at < now() - make_interval(days => p_keep_days)
        RETURNING 1
    )
    SELECT count(*) FROM gone;
$$;
