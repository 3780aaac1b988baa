/* PLACEHOLDER: replaced by the implementation of `mbta-stream migrate`. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_migrate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "mbta-stream migrate: not built yet\n");
    return 2;
}
