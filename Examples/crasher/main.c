// crasher: waits for a command on UART0 and fails the way it names: "trap" (unreachable),
// "oom" (allocates until the memory limit), "spin" (loops without yielding), "exit" (status 3).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rampart.h"

int main(void) {
    rampart_uart_puts("UART0", "crasher: ready\n");
    for (;;) {
        char command[16] = {0};
        int32_t count = rampart_uart_read("UART0", 5, (uint8_t *)command, sizeof command - 1);
        if (count > 0) {
            printf("crasher: %s\n", command);
            fflush(stdout);
            if (strncmp(command, "trap", 4) == 0) __builtin_trap();
            if (strncmp(command, "exit", 4) == 0) exit(3);
            if (strncmp(command, "oom", 3) == 0) {
                // Each block links to the last, so the compiler cannot drop the allocations.
                static char *volatile kept;
                for (;;) {
                    char *block = malloc(64 * 1024);
                    if (!block) abort();
                    memset(block, 1, 64 * 1024);
                    *(char **)block = kept;
                    kept = block;
                }
            }
            if (strncmp(command, "spin", 4) == 0) {
                volatile uint64_t spins = 0;
                for (;;) spins++;
            }
        }
        if (rampart_sleep_ms(50) == RAMPART_EVENT_TERMINATE) return 0;
    }
}
