-- Headers published with the message: the W3C trace context of the producing span, and, for
-- parked messages, why they were parked.
ALTER TABLE outbox ADD COLUMN headers JSONB NOT NULL DEFAULT '{}';
