/*
 * Startup, resource table and helpers shared by every test firmware.
 * The vector table sits at device address 0 (RETRAM); the stack grows down
 * from the top of MCUSRAM2.  Linux (or the TEE) loads .data at its run
 * address, so Reset_Handler only clears .bss and calls main().
 */
#include "board.h"

extern uint32_t _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void)
{
	for (uint32_t *p = &_sbss; p < &_ebss; p++)
		*p = 0;
	main();
	for (;;)
		;
}

void Default_Handler(void)
{
	for (;;)
		;
}

/* a firmware defines the handlers it needs; the others spin */
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void IPCC_RX1_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));

/* 16 system exceptions, then external interrupts up to the IPCC's */
__attribute__((section(".isr_vector"), used))
const void *const vectors[16 + IPCC_RX_IRQ + 1] = {
	[0] = &_estack,
	[1] = Reset_Handler,
	[2 ... 6] = Default_Handler,
	[11] = SVC_Handler,
	[12] = Default_Handler,
	[14] = PendSV_Handler,
	[15] = SysTick_Handler,
	[16 ... 16 + IPCC_RX_IRQ - 1] = Default_Handler,
	[16 + IPCC_RX_IRQ] = IPCC_RX1_IRQHandler,
};

#define TRACE_SIZE 512
static char trace_buf[TRACE_SIZE];
static unsigned trace_pos;

__attribute__((section(".resource_table"), used))
struct resource_table resource_table = {
	.ver = 1,
	.num = 2,
	.offset = {
		__builtin_offsetof(struct resource_table, trace),
		__builtin_offsetof(struct resource_table, vdev),
	},
	.trace = { RSC_TRACE, (uint32_t)trace_buf, TRACE_SIZE, 0, "cm4_log" },
	.vdev = {
		RSC_VDEV, VIRTIO_ID_RPMSG, 0, 1, 0, 0, 0, 2, {0, 0},
		{
			{ 0x10040000u, 16, 8, 0, 0 },
			{ 0x10041000u, 16, 8, 1, 0 },
		},
	},
};

void trace_puts(const char *s)
{
	/* keep one NUL at the end: Linux's trace reader stops at it */
	while (*s && trace_pos < TRACE_SIZE - 1)
		trace_buf[trace_pos++] = *s++;
	trace_buf[trace_pos] = 0;
}

void uart_puts(const char *s)
{
	while (*s) {
		while (!(UART_ISR & UART_ISR_TXE))
			;
		UART_TDR = (uint8_t)*s++;
	}
}

void ipcc_kick(unsigned channel)
{
	IPCC_C2SCR = 1u << (16 + channel);
}
