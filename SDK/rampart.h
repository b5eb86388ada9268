/*
 * rampart.h — the host API of a Rampart device for WebAssembly apps (wasm32-wasi).
 *
 * An app is a WASI preview 1 command: `main` runs once when the app starts; return from it
 * (or call exit) to end the app. Standard output and error go to the app's log
 * (`rampart device app logs`; at most 1 MiB per run, the rest is dropped). There is no
 * environment, and no file system except `/storage` when the manifest declares
 * MutableStorage (1–65536 KiB, a hard quota: each file or directory costs its size plus 256
 * bytes; growth past it fails with ENOSPC, seeking past it with EINVAL; at most 64 files
 * open). One read or write moves at most 16 MiB, and a read's buffers may not overlap its
 * iovec array (EFAULT). Clocks have millisecond resolution. `sleep` and friends return early
 * when the app is asked to stop, so it can see RAMPART_EVENT_TERMINATE. WASI calls not
 * listed in the runtime's docs (sockets, links, renumbering, setting times) return ENOSYS.
 *
 * Every function below is granted by a capability in app_manifest.json. Calling one the
 * manifest does not declare returns RAMPART_EDENIED; the runtime logs and counts it.
 * Functions return a non-negative value on success and a negative RAMPART_E* code on error.
 * A pointer the app passes must lie inside its memory, or the call fails with
 * RAMPART_EINVAL.
 *
 * CPU: an app spends "fuel" (about one unit per WebAssembly instruction) from a budget of
 * Limits.CpuFuelPerSecond (1,000–2,000,000,000; default 50,000,000) that refills while time
 * passes, up to one
 * second's worth. An app that runs longer than that without calling the host — waiting for
 * an event, sleeping, any call below — is stopped, as is one whose memory would grow past
 * Limits.MemoryKB. A stopped or crashed app is restarted with exponential backoff (1 s,
 * doubling up to 5 min); five failures within ten minutes is a crash loop and it stays
 * down.
 *
 * Build: clang --target=wasm32-wasi -O2 -I<this directory> -o app.wasm main.c
 */
#ifndef RAMPART_H
#define RAMPART_H

#include <stdint.h>
#include <string.h>

#define RAMPART_IMPORT(name) __attribute__((import_module("rampart"), import_name(#name)))

/* Errors. */
#define RAMPART_EDENIED   (-1) /* the manifest does not grant this */
#define RAMPART_EINVAL    (-2) /* a bad argument or a pointer outside the app's memory */
#define RAMPART_ENOTFOUND (-3) /* no such app running, device or register */
#define RAMPART_ETOOBIG   (-4) /* more than the call accepts (1 MiB bodies, 64 KiB messages, 4 KiB bus transfers) */
#define RAMPART_EIO       (-5) /* the peripheral or the network failed */
#define RAMPART_ETIMEDOUT (-6) /* no answer in time (HTTPS: 30 s) */
#define RAMPART_EBUSY     (-7)

/* ---- Events (no capability needed to wait; what arrives depends on capabilities) ---- */

#define RAMPART_EVENT_NONE           0 /* the timeout passed */
#define RAMPART_EVENT_TERMINATE      1 /* stop now: return from main within 2 seconds or be forced off */
#define RAMPART_EVENT_UPDATE_PENDING 2 /* SoftwareUpdateDeferral: payload {"installsAt":"<ISO 8601>"} */
#define RAMPART_EVENT_SYSTEM         3 /* SystemEventNotifications: payload is the event's name:
                                          "update_pending", "update_installed", "certificate_renewed" */
#define RAMPART_EVENT_MESSAGE        4 /* from another app: payload is its 36-character component ID, then the data */

/* Waits up to timeout_ms (negative: forever) for the next event. Returns its kind, copies up
 * to cap bytes of its payload to buf and stores the payload's full length in *len. Also the
 * way to sleep: the app is not charged CPU while it waits. */
RAMPART_IMPORT(event_wait)
int32_t rampart_event_wait(int32_t timeout_ms, uint8_t *buf, uint32_t cap, uint32_t *len);

/* SystemEventNotifications: start receiving RAMPART_EVENT_SYSTEM events. */
RAMPART_IMPORT(system_events_subscribe)
int32_t rampart_system_events_subscribe(void);

/* SoftwareUpdateDeferral: after RAMPART_EVENT_UPDATE_PENDING, put the update off by
 * 1–1440 minutes from now. The runtime installs it anyway 24 hours after it first became
 * pending. */
RAMPART_IMPORT(update_defer)
int32_t rampart_update_defer(uint32_t minutes);

/* ---- Peripherals: each names the pins, channels or buses its capability lists ---- */

/* Gpio: [pin, …]. Set an output (0/1) or read a level (returns 0/1). */
RAMPART_IMPORT(gpio_set) int32_t rampart_gpio_set(uint32_t pin, uint32_t value);
RAMPART_IMPORT(gpio_get) int32_t rampart_gpio_get(uint32_t pin);

/* Uart: ["UART0", …]. Write returns bytes written; read returns bytes read (0 if none
 * waiting; it does not block). */
RAMPART_IMPORT(uart_write)
int32_t rampart_uart_write(const char *uart, uint32_t uart_len, const uint8_t *data, uint32_t len);
RAMPART_IMPORT(uart_read)
int32_t rampart_uart_read(const char *uart, uint32_t uart_len, uint8_t *buf, uint32_t cap);

/* I2cMaster: ["I2C0", …]. Writes tx to the 7-bit address, then reads rx_len bytes into rx.
 * Returns bytes read. */
RAMPART_IMPORT(i2c_transfer)
int32_t rampart_i2c_transfer(const char *bus, uint32_t bus_len, uint32_t address,
                             const uint8_t *tx, uint32_t tx_len, uint8_t *rx, uint32_t rx_len);

/* SpiMaster: ["SPI0", …]. Full duplex: len bytes out of tx, len bytes into rx. */
RAMPART_IMPORT(spi_transfer)
int32_t rampart_spi_transfer(const char *bus, uint32_t bus_len, const uint8_t *tx, uint8_t *rx, uint32_t len);

/* Adc: [channel, …]. A 12-bit sample, 0–4095. */
RAMPART_IMPORT(adc_read) int32_t rampart_adc_read(uint32_t channel);

/* Pwm: [channel, …]. duty_ns must not exceed period_ns. */
RAMPART_IMPORT(pwm_set) int32_t rampart_pwm_set(uint32_t channel, uint32_t period_ns, uint32_t duty_ns);

/* ---- Network ---- */

/* With this flag the request presents the device's current certificate (mutual TLS). Needs
 * DeviceAuthentication naming the device's tenant; the key never leaves the runtime. */
#define RAMPART_HTTPS_DEVICE_AUTH 1u

/* AllowedConnections: ["host.example.com", …] — exact host names, compared without case;
 * no wildcards; any port. An https:// URL only; redirects are not followed. Returns the HTTP
 * status; copies up to cap bytes of the response body into resp and stores its full length
 * in *resp_len. A response body over 1 MiB fails the call with RAMPART_EIO. */
RAMPART_IMPORT(https_request)
int32_t rampart_https_request(const char *method, uint32_t method_len, const char *url, uint32_t url_len,
                              const uint8_t *body, uint32_t body_len, uint32_t flags,
                              uint8_t *resp, uint32_t cap, uint32_t *resp_len);

/* AllowedApplicationConnections: ["<component id>", …] — delivered only when the other app
 * lists this one too and is running (else RAMPART_EDENIED / RAMPART_ENOTFOUND). */
RAMPART_IMPORT(app_send)
int32_t rampart_app_send(const char *component_id, uint32_t id_len, const uint8_t *data, uint32_t len);

/* Conveniences for NUL-terminated strings. */
static inline int32_t rampart_uart_puts(const char *uart, const char *text) {
    return rampart_uart_write(uart, (uint32_t)strlen(uart), (const uint8_t *)text, (uint32_t)strlen(text));
}

static inline int32_t rampart_https_post(const char *url, const char *body, uint32_t flags,
                                         uint8_t *resp, uint32_t cap, uint32_t *resp_len) {
    return rampart_https_request("POST", 4, url, (uint32_t)strlen(url), (const uint8_t *)body,
                                 (uint32_t)strlen(body), flags, resp, cap, resp_len);
}

/* Sleeps ms milliseconds unless an event arrives first; returns that event's kind (or 0). */
static inline int32_t rampart_sleep_ms(int32_t ms) {
    uint32_t len = 0;
    return rampart_event_wait(ms, 0, 0, &len);
}

#endif /* RAMPART_H */
