-- Table and trigger for Citadel's PostgreSQL loader plugin
-- (plugins/loader-postgres; server config: postgres-loader.toml beside this).
--
--   psql "$DSN" -v ON_ERROR_STOP=1 -f deploy/examples/postgres-loader.sql
--
-- The loader answers a cache miss of key K with
--   SELECT v FROM kv WHERE k = $1
-- (its --query; any query with one parameter, the key, and the value, bytea
-- or text, in its first column works). It LISTENs on the channel
-- citadel_invalidate (its --listen-channel): the trigger below NOTIFYs the
-- key of every row inserted, updated or deleted, and Citadel drops that key
-- within milliseconds. Inserts notify too: they end a cached "not found".
-- A NOTIFY with an empty payload tells Citadel anything may have changed.
-- Notifications are sent when the transaction commits.

CREATE TABLE IF NOT EXISTS kv (
    k text PRIMARY KEY,
    v bytea
);

CREATE OR REPLACE FUNCTION kv_notify_citadel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('citadel_invalidate', OLD.k);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.k IS DISTINCT FROM OLD.k) THEN
        PERFORM pg_notify('citadel_invalidate', NEW.k);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS kv_notify_citadel ON kv;
CREATE TRIGGER kv_notify_citadel
    AFTER INSERT OR UPDATE OR DELETE ON kv
    FOR EACH ROW EXECUTE FUNCTION kv_notify_citadel();
