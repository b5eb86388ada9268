// telemetry: posts an ADC reading over HTTPS, presenting the device's certificate, every
// ten seconds. The endpoint is read from /storage/endpoint when present (so one build serves
// any server); the host must be in AllowedConnections.
#include <stdio.h>
#include <string.h>
#include "rampart.h"

static char endpoint[512] = "https://telemetry.example.com/v1/ingest";

static void load_endpoint(void) {
    FILE *file = fopen("/storage/endpoint", "r");
    if (!file) return;
    if (fgets(endpoint, sizeof endpoint, file)) endpoint[strcspn(endpoint, "\r\n")] = 0;
    fclose(file);
}

int main(void) {
    load_endpoint();
    for (;;) {
        char body[64];
        snprintf(body, sizeof body, "{\"adc0\":%d}", (int)rampart_adc_read(0));
        uint8_t response[256];
        uint32_t length = 0;
        int32_t status = rampart_https_post(endpoint, body, RAMPART_HTTPS_DEVICE_AUTH, response, sizeof response - 1, &length);
        if (status < 0) {
            printf("telemetry: %s refused the request (%d)\n", status == RAMPART_EDENIED ? "the runtime" : "the network", (int)status);
        } else {
            response[length < sizeof response - 1 ? length : sizeof response - 1] = 0;
            printf("telemetry: HTTP %d %s\n", (int)status, (char *)response);
        }
        fflush(stdout);
        if (rampart_sleep_ms(10000) == RAMPART_EVENT_TERMINATE) return 0;
    }
}
