-- The account that deposited a signed copy (NULL: the command line, or a copy deposited before
-- this column): a retry of the same file by the same account is recognised by the account, not
-- by the display name two people may share.
ALTER TABLE convention_files ADD COLUMN uploaded_by_user_id TEXT;
