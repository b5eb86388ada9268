#include "clinux_peripherals.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <linux/spi/spidev.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int rp_gpio_request_line(const char *chip, unsigned int offset, int output, int initial) {
    int chip_fd = open(chip, O_RDWR | O_CLOEXEC);
    if (chip_fd < 0) return -errno;
    struct gpio_v2_line_request request;
    memset(&request, 0, sizeof request);
    request.offsets[0] = offset;
    request.num_lines = 1;
    strncpy(request.consumer, "rampartd", sizeof request.consumer - 1);
    request.config.flags = output ? GPIO_V2_LINE_FLAG_OUTPUT : GPIO_V2_LINE_FLAG_INPUT;
    if (output) {
        request.config.num_attrs = 1;
        request.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
        request.config.attrs[0].attr.values = initial ? 1 : 0;
        request.config.attrs[0].mask = 1;
    }
    int result = ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &request);
    int saved = errno;
    close(chip_fd);
    if (result < 0) return -saved;
    return request.fd;
}

int rp_gpio_set(int line_fd, int value) {
    struct gpio_v2_line_values values = {.bits = value ? 1 : 0, .mask = 1};
    return ioctl(line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &values) < 0 ? -errno : 0;
}

int rp_gpio_get(int line_fd) {
    struct gpio_v2_line_values values = {.bits = 0, .mask = 1};
    if (ioctl(line_fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &values) < 0) return -errno;
    return (int)(values.bits & 1);
}

int rp_i2c_transfer(const char *device, unsigned int address, const uint8_t *tx, size_t tx_len, uint8_t *rx, size_t rx_len) {
    int fd = open(device, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct i2c_msg messages[2];
    int count = 0;
    if (tx_len > 0) {
        messages[count].addr = (uint16_t)address;
        messages[count].flags = 0;
        messages[count].len = (uint16_t)tx_len;
        messages[count].buf = (uint8_t *)tx;
        count++;
    }
    if (rx_len > 0) {
        messages[count].addr = (uint16_t)address;
        messages[count].flags = I2C_M_RD;
        messages[count].len = (uint16_t)rx_len;
        messages[count].buf = rx;
        count++;
    }
    int result = 0;
    if (count > 0) {
        struct i2c_rdwr_ioctl_data transaction = {.msgs = messages, .nmsgs = (uint32_t)count};
        result = ioctl(fd, I2C_RDWR, &transaction) < 0 ? -errno : (int)rx_len;
    }
    close(fd);
    return result;
}

int rp_spi_transfer(const char *device, const uint8_t *tx, uint8_t *rx, size_t len) {
    int fd = open(device, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct spi_ioc_transfer transfer;
    memset(&transfer, 0, sizeof transfer);
    transfer.tx_buf = (uintptr_t)tx;
    transfer.rx_buf = (uintptr_t)rx;
    transfer.len = (uint32_t)len;
    int result = ioctl(fd, SPI_IOC_MESSAGE(1), &transfer) < 0 ? -errno : (int)len;
    close(fd);
    return result;
}
