/* PLACEHOLDER: replaced by the implementation of `mbta-stream produce`. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_produce(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "mbta-stream produce: not built yet\n");
    return 2;
}
