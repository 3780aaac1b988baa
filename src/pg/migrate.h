/*
 * migrate: applies the embedded migrations (pg/migrations.h, from sql/) to a
 * schema. Each pending version runs in its own transaction with "${schema}"
 * replaced by the quoted schema name, and is recorded in
 * <schema>.schema_migrations. Concurrent runs (two consumers starting at
 * once) are serialized by a transaction-level advisory lock per schema, and
 * a second run finds nothing to do: idempotent.
 *
 * Does not: connect (the caller passes a libpq connection) or retry.
 */
#ifndef MBTA_PG_MIGRATE_H
#define MBTA_PG_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

/* Whether name is a schema name we accept: [a-z_][a-z0-9_]{0,62}. */
int pg_migrate_schema_ok(const char *name);

/*
 * Brings `schema` up to the newest version. Returns the number of versions
 * applied (0: already current), or -1 with errstr.
 */
int pg_migrate_run(PGconn *conn, const char *schema, char *errstr, size_t errsz);

/* The newest embedded version. */
int pg_migrate_latest(void);

#endif
