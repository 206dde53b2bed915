-- 0001_init (SQLite): the whole schema of the server's storage. docs/storage.md.
-- Column names and meanings are the same as in the PostgreSQL set: one SQL text of
-- queries (src/io/db_sql.c) serves both.

CREATE TABLE meta (
	name TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
INSERT INTO meta (name, value) VALUES ('deny_version', 0);

CREATE TABLE ses (
	serial BLOB PRIMARY KEY CHECK (typeof(serial) = 'blob' AND length(serial) = 8),
	state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),
	replaced_by BLOB CHECK (replaced_by IS NULL OR length(replaced_by) = 8),
	created INTEGER NOT NULL,
	changed INTEGER NOT NULL
);
CREATE INDEX ses_denied ON ses (serial) WHERE state <> 1;

CREATE TABLE readers (
	id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
	key_version INTEGER NOT NULL CHECK (key_version BETWEEN 0 AND 4294967295),
	class INTEGER NOT NULL CHECK (class BETWEEN 0 AND 4294967295),
	state INTEGER NOT NULL CHECK (state IN (1, 2)),
	last_contact INTEGER NOT NULL
);

CREATE TABLE services (
	id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
	name TEXT NOT NULL,
	kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3, 4))
);

CREATE TABLE service_prices (
	service INTEGER NOT NULL REFERENCES services (id),
	item INTEGER NOT NULL CHECK (item BETWEEN 0 AND 4294967295),
	price INTEGER NOT NULL CHECK (price BETWEEN 0 AND 4294967295),
	PRIMARY KEY (service, item)
) WITHOUT ROWID;

-- Double-entry ledger. balance is the sum of the account's postings, kept by the
-- postings_apply trigger; purses and revenue accounts never go below zero.
CREATE TABLE accounts (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
	balance INTEGER NOT NULL DEFAULT 0,
	CONSTRAINT balance_not_negative CHECK (kind = 3 OR balance >= 0)
);

-- A transfer must be sealed before its transaction commits: the deferred foreign key
-- to transfer_seals, and a seal exists only for postings that sum to zero (below).
CREATE TABLE transfer_seals (
	transfer_id INTEGER PRIMARY KEY
);

CREATE TABLE transfers (
	id INTEGER PRIMARY KEY,
	key TEXT NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 47),
	kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3, 4)),
	amount INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 4294967295),
	se BLOB CHECK (se IS NULL OR length(se) = 8),
	reader INTEGER NOT NULL,
	service INTEGER NOT NULL,
	rec_time INTEGER NOT NULL,
	refund_of INTEGER REFERENCES transfers (id),
	result INTEGER NOT NULL,
	created INTEGER NOT NULL,
	CONSTRAINT transfer_sealed FOREIGN KEY (id) REFERENCES transfer_seals (transfer_id)
		DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX transfers_refund_of ON transfers (refund_of) WHERE refund_of IS NOT NULL;

CREATE TABLE postings (
	transfer_id INTEGER NOT NULL REFERENCES transfers (id),
	leg INTEGER NOT NULL CHECK (leg BETWEEN 1 AND 4),
	account INTEGER NOT NULL REFERENCES accounts (id),
	amount INTEGER NOT NULL CHECK (amount <> 0),
	PRIMARY KEY (transfer_id, leg)
) WITHOUT ROWID;

CREATE TRIGGER postings_apply AFTER INSERT ON postings
BEGIN
	UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account;
END;

CREATE TRIGGER postings_after_seal BEFORE INSERT ON postings
WHEN EXISTS (SELECT 1 FROM transfer_seals WHERE transfer_id = NEW.transfer_id)
BEGIN
	SELECT RAISE(ABORT, 'ledger: transfer already sealed');
END;

CREATE TRIGGER seals_balanced BEFORE INSERT ON transfer_seals
WHEN (SELECT count(*) < 2 OR coalesce(sum(amount), 0) <> 0
      FROM postings WHERE transfer_id = NEW.transfer_id)
BEGIN
	SELECT RAISE(ABORT, 'ledger: the postings of a transfer must sum to zero');
END;

-- The ledger is append-only.
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN
	SELECT RAISE(ABORT, 'ledger: postings are append-only');
END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN
	SELECT RAISE(ABORT, 'ledger: postings are append-only');
END;
CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers
BEGIN
	SELECT RAISE(ABORT, 'ledger: transfers are append-only');
END;
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers
BEGIN
	SELECT RAISE(ABORT, 'ledger: transfers are append-only');
END;
CREATE TRIGGER seals_no_change BEFORE UPDATE ON transfer_seals
BEGIN
	SELECT RAISE(ABORT, 'ledger: seals are append-only');
END;
CREATE TRIGGER seals_no_delete BEFORE DELETE ON transfer_seals
BEGIN
	SELECT RAISE(ABORT, 'ledger: seals are append-only');
END;
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
BEGIN
	SELECT RAISE(ABORT, 'ledger: accounts are never deleted');
END;

CREATE TABLE tickets (
	id INTEGER PRIMARY KEY,
	key TEXT NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 47),
	se BLOB NOT NULL REFERENCES ses (serial),
	service INTEGER NOT NULL REFERENCES services (id),
	valid_from INTEGER NOT NULL,
	valid_until INTEGER NOT NULL,
	uses_left INTEGER NOT NULL CHECK (uses_left BETWEEN 0 AND 4294967295),
	state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),
	CHECK (valid_until > valid_from)
);
CREATE INDEX tickets_se ON tickets (se, id);

CREATE TABLE orders (
	id INTEGER PRIMARY KEY,
	key TEXT NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 47),
	se BLOB NOT NULL REFERENCES ses (serial),
	service INTEGER NOT NULL REFERENCES services (id),
	total INTEGER NOT NULL CHECK (total >= 0),
	state INTEGER NOT NULL CHECK (state IN (1, 2, 3, 4)),
	created INTEGER NOT NULL
);

CREATE TABLE order_items (
	order_id INTEGER NOT NULL REFERENCES orders (id),
	line INTEGER NOT NULL CHECK (line BETWEEN 1 AND 16),
	item INTEGER NOT NULL,
	qty INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 4294967295),
	price INTEGER NOT NULL CHECK (price BETWEEN 0 AND 4294967295),
	PRIMARY KEY (order_id, line)
) WITHOUT ROWID;

CREATE TABLE pauth (
	se BLOB PRIMARY KEY REFERENCES ses (serial),
	identifier TEXT NOT NULL
);

CREATE TABLE pauth_attrs (
	se BLOB NOT NULL REFERENCES pauth (se),
	name TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (se, name)
) WITHOUT ROWID;

-- Which attributes a reader of a class may see.
CREATE TABLE pauth_visible (
	class INTEGER NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (class, name)
) WITHOUT ROWID;

CREATE TABLE history (
	id INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 14),
	se BLOB CHECK (se IS NULL OR length(se) = 8),
	reader INTEGER NOT NULL,
	service INTEGER NOT NULL,
	amount INTEGER NOT NULL,
	ref INTEGER NOT NULL,
	key TEXT UNIQUE
);
CREATE INDEX history_se ON history (se, id);
CREATE INDEX history_reader ON history (reader, id);

-- The se's virtual memory: sam-encrypted blobs, opaque here.
CREATE TABLE vault (
	se BLOB NOT NULL REFERENCES ses (serial),
	slot INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 4294967295),
	version INTEGER NOT NULL CHECK (version >= 0),
	data BLOB NOT NULL CHECK (length(data) <= 4096),
	updated INTEGER NOT NULL,
	PRIMARY KEY (se, slot)
) WITHOUT ROWID;
