-- replay-rejected: when a rejection was last re-checked and found still rejected, so that a
-- bounded replay (--limit) takes the never-checked ones first and a run of rejections that
-- stay broken cannot hide the rest from every later run. Pending rejections are found by an
-- index of their own, in the order replay takes them.
ALTER TABLE rejected ADD COLUMN replay_checked_at timestamptz;

CREATE INDEX rejected_pending ON rejected (replay_checked_at NULLS FIRST, id)
    WHERE replayed_at IS NULL;
