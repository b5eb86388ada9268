// Linux character-device peripherals for the device runtime: GPIO lines (uAPI v2), I2C
// (I2C_RDWR) and SPI (spidev). Each function returns >= 0 on success or -errno.
#ifndef CLINUX_PERIPHERALS_H
#define CLINUX_PERIPHERALS_H

#include <stddef.h>
#include <stdint.h>

/// Requests one line of a GPIO chip as an output (with `initial`) or an input; returns the line's fd.
int rp_gpio_request_line(const char *chip, unsigned int offset, int output, int initial);
int rp_gpio_set(int line_fd, int value);
/// The line's level, 0 or 1.
int rp_gpio_get(int line_fd);
/// Writes tx_len bytes, then reads rx_len bytes, as one I2C_RDWR transaction with the 7-bit address.
int rp_i2c_transfer(const char *device, unsigned int address, const uint8_t *tx, size_t tx_len, uint8_t *rx, size_t rx_len);
/// Full duplex: len bytes out of tx and into rx.
int rp_spi_transfer(const char *device, const uint8_t *tx, uint8_t *rx, size_t len);

#endif
