// blink: toggles GPIO 4 every half second until the runtime asks it to stop.
#include <stdio.h>
#include "rampart.h"

int main(void) {
    uint32_t level = 0;
    for (int toggles = 0;; toggles++) {
        if (rampart_gpio_set(4, level) < 0) {
            printf("blink: GPIO 4 refused\n");
            return 1;
        }
        level ^= 1;
        if (rampart_sleep_ms(500) == RAMPART_EVENT_TERMINATE) {
            printf("blink: stopping after %d toggles\n", toggles + 1);
            return 0;
        }
    }
}
