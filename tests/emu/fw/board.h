/*
 * What the test firmware sees of the emulated stm32mp15 M4 (rproctee.emu):
 * peripheral addresses as the M4 sees them, and the resource-table layout
 * of Linux's include/linux/remoteproc.h (packed, little-endian).
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* IPCC (STM32MP15 inter-processor communication controller); M4 = CPU2. */
#define IPCC_BASE 0x4C001000u
#define IPCC_C1TOC2SR REG32(IPCC_BASE + 0x0C) /* host -> M4 channel flags */
#define IPCC_C2CR REG32(IPCC_BASE + 0x10)     /* bit 0 RXOIE */
#define IPCC_C2MR REG32(IPCC_BASE + 0x14)     /* bit n: channel n RX masked */
#define IPCC_C2SCR REG32(IPCC_BASE + 0x18)    /* M4: bit n clear, bit 16+n set */
#define IPCC_C2TOC1SR REG32(IPCC_BASE + 0x1C) /* M4 -> host channel flags */

/* UART7 (STM32 USART register layout: ISR, TDR). */
#define UART_BASE 0x40018000u
#define UART_ISR REG32(UART_BASE + 0x1C)
#define UART_TDR REG32(UART_BASE + 0x28)
#define UART_ISR_TXE (1u << 7)

/* Independent watchdog (STM32 IWDG layout: key register). */
#define IWDG_BASE 0x5A002000u
#define IWDG_KR REG32(IWDG_BASE + 0x00)
#define IWDG_KEY_START 0xCCCCu
#define IWDG_KEY_RELOAD 0xAAAAu

/* NVIC; the M4's IPCC "RX occupied" interrupt line. */
#define NVIC_ISER(n) REG32(0xE000E100u + 4 * (n))
#define IPCC_RX_IRQ 103

/* SysTick (Armv7-M system control space). */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)

#define RSC_TRACE 2
#define RSC_VDEV 3
#define VIRTIO_ID_RPMSG 7
#define VIRTIO_CONFIG_S_DRIVER_OK 4

struct fw_rsc_trace {
	uint32_t type, da, len, reserved;
	char name[32];
} __attribute__((packed));

struct fw_rsc_vdev_vring {
	uint32_t da, align, num, notifyid, pa;
} __attribute__((packed));

struct fw_rsc_vdev {
	uint32_t type, id, notifyid, dfeatures, gfeatures, config_len;
	uint8_t status, num_of_vrings, reserved[2];
	struct fw_rsc_vdev_vring vring[2];
} __attribute__((packed));

struct resource_table {
	uint32_t ver, num, reserved[2];
	uint32_t offset[2];
	struct fw_rsc_trace trace;
	struct fw_rsc_vdev vdev;
} __attribute__((packed));

extern struct resource_table resource_table;

/* trace.c: the trace buffer named by the table, and helpers. */
void trace_puts(const char *s);
void uart_puts(const char *s);
void ipcc_kick(unsigned channel);

#endif
