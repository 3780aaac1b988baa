/* PLACEHOLDER: replaced by the implementation of `mbta-stream tail`. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_tail(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "mbta-stream tail: not built yet\n");
    return 2;
}
