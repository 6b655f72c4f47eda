-- When the stored access token expires (not secret), so the refresher finds tokens to renew
-- without opening every channel's credentials.
ALTER TABLE channels
    ADD COLUMN access_token_expires_at TIMESTAMPTZ,
    ADD COLUMN refresh_failures        INT  NOT NULL DEFAULT 0,
    ADD COLUMN last_refresh_error      TEXT;
CREATE INDEX channels_token_expiry ON channels (access_token_expires_at)
    WHERE platform = 'tiktok_shop' AND credentials IS NOT NULL;
