/*
 * The schema migrations embedded in the binary, generated at build time from
 * sql/NNN_name.sql by scripts/embed-sql. Versions are increasing; each file
 * is applied once, in one transaction, with "${schema}" replaced by the
 * configured schema name (see pg/migrate.h).
 */
#ifndef MBTA_PG_MIGRATIONS_H
#define MBTA_PG_MIGRATIONS_H

#include <stddef.h>

struct pg_migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct pg_migration pg_migrations[];
extern const size_t pg_migrations_count;

#endif
