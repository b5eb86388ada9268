// storage: counts its starts in /storage/starts, then fills the rest of its quota and
// reports where the runtime stopped it.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "rampart.h"

int main(void) {
    int starts = 0;
    FILE *file = fopen("/storage/starts", "r");
    if (file) {
        if (fscanf(file, "%d", &starts) != 1) starts = 0;
        fclose(file);
    }
    file = fopen("/storage/starts", "w");
    if (!file) {
        printf("storage: cannot open /storage/starts: %s\n", strerror(errno));
        return 1;
    }
    fprintf(file, "%d\n", ++starts);
    fclose(file);

    static char block[1024];
    memset(block, 'x', sizeof block);
    FILE *fill = fopen("/storage/fill", "w");
    long written = 0;
    if (fill) {
        setvbuf(fill, NULL, _IONBF, 0);
        while (fwrite(block, 1, sizeof block, fill) == sizeof block) written += sizeof block;
        printf("storage: start %d; the quota stopped the fill after %ld bytes (%s)\n", starts, written, strerror(errno));
        fclose(fill);
        remove("/storage/fill");
    }
    return 0;
}
