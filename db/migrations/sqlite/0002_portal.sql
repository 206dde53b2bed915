-- 0002_portal (SQLite): what the customer portal writes. docs/portal.md.
-- Column names and meanings are the same as in the PostgreSQL set.

-- A lock or unlock the server recorded that the se has not confirmed yet: 0 none,
-- 1 lock pending, 2 unlock pending; pending_since: when it was asked for.
ALTER TABLE ses ADD COLUMN pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1, 2));
ALTER TABLE ses ADD COLUMN pending_since INTEGER NOT NULL DEFAULT 0;

-- The operator's one-time unlock code of a se, hashed: SHA-256(salt || serial || digits).
CREATE TABLE unlock_codes (
	se BLOB PRIMARY KEY REFERENCES ses (serial),
	salt BLOB NOT NULL CHECK (typeof(salt) = 'blob' AND length(salt) = 16),
	hash BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),
	expires INTEGER NOT NULL,
	tries INTEGER NOT NULL CHECK (tries BETWEEN 0 AND 4294967295)
);

-- History kind 15: personal data deleted. SQLite cannot change a CHECK in place.
CREATE TABLE history_new (
	id INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 15),
	se BLOB CHECK (se IS NULL OR length(se) = 8),
	reader INTEGER NOT NULL,
	service INTEGER NOT NULL,
	amount INTEGER NOT NULL,
	ref INTEGER NOT NULL,
	key TEXT UNIQUE
);
INSERT INTO history_new (id, time, kind, se, reader, service, amount, ref, key)
	SELECT id, time, kind, se, reader, service, amount, ref, key FROM history;
DROP TABLE history;
ALTER TABLE history_new RENAME TO history;
CREATE INDEX history_se ON history (se, id);
CREATE INDEX history_reader ON history (reader, id);
