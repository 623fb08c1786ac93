-- Each order's canonical JSON, the bytes the API answers, written by ingest beside the JSONB
-- document from the same text: a read by id copies it, where converting the JSONB back to
-- text costs PostgreSQL ~27 us a document and the service a decode and a re-encode. NULL for
-- orders stored before this migration: those are read from `doc` and re-encoded, as before.
ALTER TABLE orders ADD COLUMN body text;

-- An order's row now holds its JSON twice (~2.8 KB): keep such rows whole in their heap page,
-- uncompressed (above 2 KB PostgreSQL would compress them by default, which costs ingest CPU
-- and every read a decompression).
ALTER TABLE orders SET (toast_tuple_target = 8160);
