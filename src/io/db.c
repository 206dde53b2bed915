/* db.c - db_open(): the URL picks the back end (PostgreSQL for postgresql:// and
 * postgres://, SQLite for sqlite:PATH or a plain path); anything else that looks like
 * a URL is refused rather than created as a file with a strange name. */
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "db_io.h"
#include "db_sql.h"

static _Thread_local char open_error[256];

const char *db_open_error(void)
{
	return open_error;
}

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int db_open(const char *url, struct db **out)
{
	struct db_sql *s = NULL;
	int rc;

	open_error[0] = '\0';
	if (url == NULL || out == NULL || url[0] == '\0') {
		snprintf(open_error, sizeof(open_error), "no database URL");
		return TB_E_DB_URL;
	}
	if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://")) {
		rc = db_pg_open(url, &s, open_error, sizeof(open_error));
	} else {
		const char *path = has_prefix(url, "sqlite:") ? url + 7 : url;

		if (path[0] == '\0' || strstr(path, "://") != NULL) {
			snprintf(open_error, sizeof(open_error),
				 "database URL not understood (postgresql://..., sqlite:PATH or PATH)");
			return TB_E_DB_URL;
		}
		rc = db_sqlite_open(path, &s, open_error, sizeof(open_error));
	}
	if (rc != 0)
		return rc;
	*out = &s->db;
	return 0;
}

void db_close(struct db *db)
{
	struct db_sql *s;

	if (db == NULL)
		return;
	s = db_sql_of(db);
	if (s->state != DB_SQL_IDLE)
		db->ops->batch_abort(db);
	s->drv->close(s);
}
