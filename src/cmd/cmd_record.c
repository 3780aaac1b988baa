/* PLACEHOLDER: replaced by the implementation of `mbta-stream record`. */
#include <stdio.h>

#include "cmd/cmd.h"

int cmd_record(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "mbta-stream record: not built yet\n");
    return 2;
}
