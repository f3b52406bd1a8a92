-- The token a token was minted with through the API (NULL: minted from the console, the
-- command line or at bootstrap): revoking a token revokes those minted with it.
ALTER TABLE api_tokens ADD COLUMN parent_id TEXT;
CREATE INDEX api_tokens_by_parent ON api_tokens (parent_id);
