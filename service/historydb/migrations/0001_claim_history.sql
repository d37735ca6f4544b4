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
CREATE INDEX claims_current ON claims_history.claims (claim_id) WHERE superseded_seq IS NULL;
CREATE INDEX claims_age ON claims_history.claims (last_date);

-- One batch in one call (one round trip): per-member transaction-scoped advisory locks, taken
-- in sorted order so two instances never deadlock; then per claim, in batch order, the upsert
-- (a redelivered event keeps its seq, a new event of a known claim_id supersedes the version
-- current so far) and the claims of the member first seen before it, current as of its seq,
-- whose dates come within p_window_days of its own.
CREATE FUNCTION claims_history.record_batch(
    p_event_ids text[], p_member_keys bytea[], p_claim_ids text[], p_content_keys text[],
    p_first_dates date[], p_last_dates date[], p_lines jsonb[], p_window_days integer
) RETURNS TABLE (idx integer, seq bigint, history jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lock_key bigint;
    i integer;
    s bigint;
BEGIN
    FOR lock_key IN
        SELECT DISTINCT ('x' || encode(substring(m FROM 1 FOR 8), 'hex'))::bit(64)::bigint AS k
        FROM unnest(p_member_keys) AS m ORDER BY k
    LOOP
        PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_event_ids, 1), 0) LOOP
        s := NULL;
        INSERT INTO claims_history.claims AS c
            (event_id, member_key, claim_id, content_key, first_date, last_date, lines)
        VALUES (p_event_ids[i], p_member_keys[i], p_claim_ids[i], p_content_keys[i],
                p_first_dates[i], p_last_dates[i], p_lines[i])
        ON CONFLICT (event_id) DO NOTHING
        RETURNING c.seq INTO s;
        IF s IS NULL THEN
            SELECT c.seq INTO s FROM claims_history.claims AS c WHERE c.event_id = p_event_ids[i];
        ELSE
            UPDATE claims_history.claims AS c SET superseded_seq = s
            WHERE c.claim_id = p_claim_ids[i] AND c.superseded_seq IS NULL AND c.seq < s;
        END IF;
        RETURN QUERY
            SELECT i, s, coalesce(
                jsonb_agg(jsonb_build_array(c.claim_id, c.seq, c.content_key, c.lines)
                          ORDER BY c.seq),
                '[]'::jsonb)
            FROM claims_history.claims AS c
            WHERE c.member_key = p_member_keys[i]
              AND c.seq < s
              AND c.claim_id <> p_claim_ids[i]
              AND (c.superseded_seq IS NULL OR c.superseded_seq > s)
              AND c.last_date >= p_first_dates[i] - p_window_days
              AND c.first_date <= p_last_dates[i] + p_window_days;
    END LOOP;
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
