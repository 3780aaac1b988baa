/* PLACEHOLDER: replaced by the implementation of `mbta-stream consume`. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_consume(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "mbta-stream consume: not built yet\n");
    return 2;
}
