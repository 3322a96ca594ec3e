/*
 * Interrupt-driven firmware: SysTick interrupts, an SVC call and the IPCC
 * "RX occupied" interrupt, each with its own handler (exception entry and
 * return through EXC_RETURN). After the SVC and three SysTick interrupts
 * it logs a trace line; each host doorbell on channel 1 is taken in the
 * IPCC handler, logged, and answered on channel 0. It sleeps in WFI.
 */
#include "board.h"

static volatile unsigned systicks, svcs;
static unsigned irq_count = 0x1000; /* in .data */

void SysTick_Handler(void)
{
	systicks++;
}

void SVC_Handler(void)
{
	svcs++;
}

void IPCC_RX1_IRQHandler(void)
{
	if (IPCC_C1TOC2SR & (1u << 1)) {
		IPCC_C2SCR = 1u << 1; /* clear: message taken */
		irq_count++;
		trace_puts("cm4: ipcc irq\n");
		ipcc_kick(0);
	}
}

int main(void)
{
	NVIC_ISER(IPCC_RX_IRQ / 32) = 1u << (IPCC_RX_IRQ % 32);
	IPCC_C2MR = 0x3F003Fu & ~(1u << 1); /* unmask channel 1 occupied */
	IPCC_C2CR = 1u;                     /* RXOIE */
	SYST_RVR = 4999;
	SYST_CVR = 0;
	SYST_CSR = 1 | 2 | 4; /* enable, interrupt, processor clock */
	__asm volatile("svc #0" ::: "memory");
	while (systicks < 3)
		__asm volatile("wfi");
	trace_puts(svcs == 1 ? "cm4: svc and 3 systick irqs\n" : "cm4: no svc?\n");
	for (;;)
		__asm volatile("wfi");
}
