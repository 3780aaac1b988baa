/*
 * mbta-stream migrate: creates or upgrades the PostgreSQL schema (the
 * embedded sql/NNN_*.sql) and says which version it is at.
 */
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/cmd_args.h"
#include "pg/migrate.h"
#include "pg/pgconn.h"
#include "util/log.h"
#include "util/opt.h"

int cmd_migrate(int argc, char **argv)
{
    char *pg = NULL, *schema = NULL, *loglevel = NULL;
    char err[512];
    PGconn *conn = NULL;
    int rc = 2;
    const struct opt opts[] = {
        {"pg", 0, OPT_STR, "DATABASE_URL", NULL, 0, 0, "CONNINFO",
         "PostgreSQL conninfo or postgres:// URL (default: libpq's PG* variables)", &pg,
         OPT_F_SECRET},
        {"schema", 0, OPT_STR, "MBTA_SCHEMA", "mbta", 0, 0, "NAME", "schema to create or upgrade",
         &schema, 0},
        CMD_ARGS_LOG_LEVEL_OPT(&loglevel),
        {0},
    };
    int r = cmd_args_parse(opts, "migrate", "[--pg CONNINFO] [--schema NAME]", argc, argv, NULL,
                           &loglevel);
    if (r >= 0) {
        rc = r;
        goto out;
    }
    if (!pg_migrate_schema_ok(schema)) {
        fprintf(stderr,
                "mbta-stream migrate: --schema \"%s\": use lower-case letters, digits and _\n",
                schema);
        goto out;
    }
    rc = 1;
    if (!(conn = pgconn_open(pg, "mbta-stream migrate", err, sizeof(err)))) {
        log_error("%s", err);
        goto out;
    }
    int n = pg_migrate_run(conn, schema, err, sizeof(err));
    if (n < 0) {
        log_error("schema %s: %s", schema, err);
        goto out;
    }
    log_info("schema %s: at version %d (%d applied)", schema, pg_migrate_latest(), n);
    rc = 0;
out:
    PQfinish(conn);
    opt_free(opts);
    return rc;
}
