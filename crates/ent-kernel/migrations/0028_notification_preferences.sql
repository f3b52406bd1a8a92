-- E-mail preferences of a person: one row per user and category of optional mail
-- (`notify::preferences::Category`). No row means the category is sent; mails that must
-- always go (sign-in links, password resets) have no category and are never looked up.
CREATE TABLE notification_preferences (
    user_id    TEXT NOT NULL REFERENCES users (id),
    category   TEXT NOT NULL,
    enabled    BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, category)
);
CREATE INDEX notification_preferences_opted_out ON notification_preferences (category, enabled);
