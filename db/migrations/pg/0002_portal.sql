-- 0002_portal (PostgreSQL): what the customer portal writes. docs/portal.md.
-- Column names and meanings are the same as in the SQLite set.

-- A lock or unlock the server recorded that the se has not confirmed yet: 0 none,
-- 1 lock pending, 2 unlock pending; pending_since: when it was asked for.
ALTER TABLE ses ADD COLUMN pending BIGINT NOT NULL DEFAULT 0 CHECK (pending IN (0, 1, 2));
ALTER TABLE ses ADD COLUMN pending_since BIGINT NOT NULL DEFAULT 0;

-- The operator's one-time unlock code of a se, hashed: SHA-256(salt || serial || digits).
CREATE TABLE unlock_codes (
	se BYTEA PRIMARY KEY REFERENCES ses (serial),
	salt BYTEA NOT NULL CHECK (length(salt) = 16),
	hash BYTEA NOT NULL CHECK (length(hash) = 32),
	expires BIGINT NOT NULL,
	tries BIGINT NOT NULL CHECK (tries BETWEEN 0 AND 4294967295)
);

-- History kind 15: personal data deleted.
ALTER TABLE history DROP CONSTRAINT history_kind_check;
ALTER TABLE history ADD CONSTRAINT history_kind_check CHECK (kind BETWEEN 1 AND 15);
