-- jobtrack_apply: every update of a job that its counters alone cannot make (an item, an
-- error, an abort, extend, reap's conditional abort), as ONE statement: the port of
-- jobtrack.rules (apply, add_rate, apply_item, error_group, errors_counted, add_count) and of
-- jobtrack.stores.sql.operations.apply_locked that PostgresStore runs. The contract suite
-- checks that they agree.
--
-- jobtrack.stores.sql.postgres fills in the braces before it creates the function:
-- {p} the table prefix; {max_count}, {max_groups}, {tau_ms}, {beat_ms}, {last_ms} the
-- constants of jobtrack.model, jobtrack.rules, jobtrack.stores.protocol and .schema.
--
-- Arguments (times are ms since the epoch, by the tracker's clock; the server's is never read):
--   p_ns, p_id        the job
--   p_item            the item the update is about (NULL: an anonymous update)
--   p_processed, p_successful, p_failed, p_error, p_abort, p_more, p_if_updated:
--                     the Delta (jobtrack.rules.Delta)
--   p_now             now
--   p_retain          Delta.retain[0] (NULL: a completed job is kept forever)
--
-- Returns one row: outcome, then the job (operations.JOB_COLUMNS), then the item's state
-- and error.
--   outcome 0  applied: the job as it now is
--   outcome 1  not applied: the job, item_state and item_error as they are (the rules
--              refuse the update, it is a redelivery, or the row breaks the invariants of
--              a job); jobtrack.rules, run on these values, say why
--   outcome 2  no such job (the rest is NULL)
--
-- Atomicity: the job's row is locked first (FOR NO KEY UPDATE, under READ COMMITTED: every
-- later statement here sees what the previous holder of the lock committed); every writer
-- of a job, its items and its error groups takes that lock first, so they never interleave.
CREATE OR REPLACE FUNCTION {p}apply(
    p_ns text, p_id text, p_item text,
    p_processed bigint, p_successful bigint, p_failed bigint, p_error text,
    p_abort boolean, p_more bigint, p_if_updated bigint, p_now bigint, p_retain bigint,
    OUT outcome integer,
    OUT o_namespace text, OUT o_job_id text, OUT o_total bigint, OUT o_processed bigint,
    OUT o_successful bigint, OUT o_failed bigint, OUT o_last_error text,
    OUT o_started_ms bigint, OUT o_updated_ms bigint, OUT o_finished_ms bigint,
    OUT o_expires_ms bigint, OUT o_rate double precision, OUT o_rate_at bigint,
    OUT o_rate_done bigint,
    OUT item_state integer, OUT item_error text
) LANGUAGE plpgsql AS $function$
DECLARE
    j {p}jobs%ROWTYPE;
    -- the counts rules.apply adds (an item's: what its change of state counts)
    d_processed bigint := p_processed;
    d_successful bigint := p_successful;
    d_failed bigint := p_failed;
    d_error text := p_error;
    d_abort boolean := p_abort;
    d_more bigint := p_more;
    d_if_updated bigint := p_if_updated;
    -- the item (rules.apply_item): its outcome before, its new state, its new entry
    v_outcome integer;
    v_state integer;
    v_failing boolean := false;
    v_keep boolean;
    v_position bigint;
    v_error text;
    -- the job after the update
    v_total bigint;
    v_processed bigint;
    v_successful bigint;
    v_failed bigint;
    v_updated bigint;
    v_done boolean;
    v_listed bigint;
    -- the smoothed rate (rules.fold, add_rate): the items done it has not folded in yet
    v_pending bigint;
    v_rate double precision;
    v_rate_at bigint;
    v_since bigint;
    v_dt bigint;
    v_decay double precision;
    -- the error groups (rules.error_group, errors_counted)
    v_counted bigint := 0;
    v_grp integer;
    v_groups bigint;
BEGIN
    SELECT * INTO j FROM {p}jobs WHERE namespace = p_ns AND job_id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        outcome := 2;
        RETURN;
    END IF;
    outcome := 1;
    o_namespace := j.namespace;
    o_job_id := j.job_id;
    o_total := j.total;
    o_processed := j.processed;
    o_successful := j.successful;
    o_failed := j.failed;
    o_last_error := j.last_error;
    o_started_ms := j.started_ms;
    o_updated_ms := j.updated_ms;
    o_finished_ms := j.finished_ms;
    o_expires_ms := j.expires_ms;
    o_rate := j.rate;
    o_rate_at := j.rate_at;
    o_rate_done := j.rate_done;
    item_state := 0;
    IF p_item IS NOT NULL THEN
        SELECT i.state, i.error INTO item_state, item_error FROM {p}items i
            WHERE i.namespace = p_ns AND i.job_id = p_id AND i.item = p_item;
        IF NOT FOUND THEN
            item_state := 0;
            item_error := NULL;
        END IF;
    END IF;

    -- a row that is not a valid job is left as it is (schema.decode_job: StoreCorrupt)
    IF NOT (0 <= j.processed AND j.processed <= j.total AND j.total <= {max_count}
            AND j.successful >= 0 AND j.failed >= 0 AND j.successful + j.failed <= j.total
            AND (j.finished_ms IS NULL) = (j.successful + j.failed < j.total)
            AND (j.finished_ms IS NULL OR j.finished_ms = j.updated_ms)
            AND j.updated_ms >= j.started_ms AND j.last_error IS DISTINCT FROM '') THEN
        RETURN;
    END IF;

    -- rules.apply_item: the item's new state, and the counts its change makes
    IF p_item IS NOT NULL THEN
        v_outcome := item_state & 6;
        v_state := CASE WHEN p_processed <> 0 THEN item_state | 1 ELSE item_state END;
        IF p_successful <> 0 THEN
            IF v_outcome <> 4 THEN
                v_state := (v_state & 1) | 4;
            END IF;
        ELSIF p_failed <> 0 AND (v_outcome = 0 OR (v_outcome = 2 AND p_error IS NOT NULL
                                                   AND p_error IS DISTINCT FROM item_error)) THEN
            v_state := (v_state & 1) | 2;
            v_failing := true;
        END IF;
        IF v_state = item_state AND NOT v_failing THEN
            RETURN;  -- a redelivery: nothing changes, on a completed job too
        END IF;
        d_processed := (v_state & 1) - (item_state & 1);
        d_successful := CASE WHEN (v_state & 4) <> 0 AND (v_outcome & 4) = 0 THEN 1 ELSE 0 END;
        d_failed := (CASE WHEN (v_state & 2) <> 0 THEN 1 ELSE 0 END)
            - (CASE WHEN (v_outcome & 2) <> 0 THEN 1 ELSE 0 END);
        d_error := CASE WHEN v_failing THEN p_error END;
        d_abort := false;
        d_more := 0;
        d_if_updated := NULL;
    END IF;

    -- rules.apply: refused (JobFinished, JobChanged, InvalidUpdate) or the job after it
    IF j.finished_ms IS NOT NULL
       OR (d_if_updated IS NOT NULL AND j.updated_ms <> d_if_updated) THEN
        RETURN;
    END IF;
    v_total := j.total + d_more;
    IF v_total > {max_count} THEN
        RETURN;
    END IF;
    v_processed := j.processed;
    v_successful := j.successful;
    IF d_abort THEN
        v_failed := v_total - v_successful;
    ELSE
        v_processed := v_processed + d_processed;
        v_successful := v_successful + d_successful;
        v_failed := j.failed + d_failed;
        IF v_processed > v_total OR v_successful + v_failed > v_total THEN
            RETURN;
        END IF;
    END IF;
    v_updated := GREATEST(j.updated_ms, p_now);  -- updated_at never goes back
    v_done := v_successful + v_failed = v_total;
    v_listed := j.listed;

    -- rules.apply's fold, step for step: the items done since rate_done (the "add"
    -- statement's included) move the smoothed rate (not an abort's: no spike at the end)
    v_rate := j.rate;
    v_rate_at := j.rate_at;
    v_pending := (CASE WHEN d_abort THEN j.successful + j.failed ELSE v_successful + v_failed END)
        - j.rate_done;
    IF v_pending > 0 THEN
        v_since := CASE j.rate_at WHEN 0 THEN j.started_ms ELSE j.rate_at END;
        v_dt := p_now - v_since;
        IF v_dt <= 0 THEN
            v_rate := v_rate + (v_pending * 1000) / {tau_ms}::double precision;
            v_rate_at := v_since;
        ELSE
            v_decay := exp(GREATEST(-v_dt / {tau_ms}::double precision, -700::double precision));
            v_rate := v_rate * v_decay + (v_pending * 1000) * (1 - v_decay) / v_dt;
            v_rate_at := p_now;
        END IF;
    END IF;

    -- the item's row and its failed-items entry (operations.apply_locked's put_item)
    IF p_item IS NOT NULL THEN
        v_keep := false;
        v_position := NULL;
        IF v_failing THEN  -- (re)listed now, last
            v_listed := v_listed + 1;
            v_position := v_listed;
            v_error := p_error;
            IF p_error IS NOT NULL THEN
                v_counted := 1;
            END IF;
        ELSIF (v_state & 2) <> 0 THEN  -- only marked processed now: its entry stays
            v_error := item_error;
            v_keep := true;
        ELSE  -- successful (or processed only): a retry that worked leaves the list
            v_error := NULL;
            v_keep := v_outcome <> 2;
        END IF;
        INSERT INTO {p}items AS i (namespace, job_id, item, state, error, position, failed_ms)
            VALUES (p_ns, p_id, p_item, v_state, v_error, v_position,
                    CASE WHEN v_failing THEN v_updated END)
            ON CONFLICT (namespace, job_id, item) DO UPDATE SET
                state = excluded.state,
                error = excluded.error,
                position = CASE WHEN v_keep THEN i.position ELSE excluded.position END,
                failed_ms = CASE WHEN v_keep THEN i.failed_ms ELSE excluded.failed_ms END;
    ELSIF d_error IS NOT NULL THEN  -- rules.errors_counted
        v_counted := v_failed - j.failed;
    END IF;

    -- rules.error_group and add_count: a group per message, the first {max_groups}, then grp 0
    IF v_counted > 0 THEN
        SELECT e.grp INTO v_grp FROM {p}errors e
            WHERE e.namespace = p_ns AND e.job_id = p_id AND e.message = p_error;
        IF NOT FOUND THEN
            SELECT count(*) INTO v_groups FROM {p}errors e
                WHERE e.namespace = p_ns AND e.job_id = p_id AND e.grp > 0;
            v_grp := CASE WHEN v_groups < {max_groups} THEN v_groups + 1 ELSE 0 END;
        END IF;
        INSERT INTO {p}errors AS e (namespace, job_id, grp, message, count, first_ms, last_ms)
            VALUES (p_ns, p_id, v_grp, CASE WHEN v_grp > 0 THEN p_error END, v_counted,
                    v_updated, v_updated)
            ON CONFLICT (namespace, job_id, grp) DO UPDATE SET
                count = LEAST(e.count + excluded.count, {max_count}),
                last_ms = excluded.last_ms;
    END IF;

    -- the job: completion sets finished_ms = updated_ms, and the expiry below the last ms
    o_total := v_total;
    o_processed := v_processed;
    o_successful := v_successful;
    o_failed := v_failed;
    o_last_error := COALESCE(d_error, j.last_error);
    o_updated_ms := v_updated;
    o_rate := v_rate;
    o_rate_at := v_rate_at;
    o_rate_done := v_successful + v_failed;
    o_finished_ms := CASE WHEN v_done THEN v_updated END;
    o_expires_ms := CASE WHEN v_done AND p_retain IS NOT NULL
                              AND v_updated <= {last_ms} - p_retain
                         THEN v_updated + p_retain END;
    UPDATE {p}jobs SET
        total = o_total,
        processed = o_processed,
        successful = o_successful,
        failed = o_failed,
        last_error = o_last_error,
        updated_ms = o_updated_ms,
        -- the second of updated_ms, rounded down (towards the past before 1970 too)
        beat_ms = v_updated - ((v_updated % {beat_ms}) + {beat_ms}) % {beat_ms},
        finished_ms = o_finished_ms,
        expires_ms = o_expires_ms,
        rate = v_rate,
        rate_at = v_rate_at,
        rate_done = o_rate_done,
        listed = v_listed
        WHERE namespace = p_ns AND job_id = p_id;
    IF v_done OR j.beat_ms <> v_updated - ((v_updated % {beat_ms}) + {beat_ms}) % {beat_ms} THEN
        PERFORM {notify};  -- wakes watchers (listen.py): at most once a second, and at completion
    END IF;
    outcome := 0;
    item_state := v_state;
    item_error := v_error;
END
$function$
