/*
 * UART firmware: print two lines on UART7, count SysTick wraps in the
 * trace, then sleep (WFI) forever.
 */
#include "board.h"

static const char *const lines[] = {
	"hello from the M4 uart\n",
	"second line, no newline yet...",
	" done\n",
};
static unsigned nlines = 3; /* in .data */

int main(void)
{
	for (unsigned i = 0; i < nlines; i++)
		uart_puts(lines[i]);
	SYST_RVR = 999;
	SYST_CVR = 0;
	SYST_CSR = 1 | 4; /* enable, processor clock, no interrupt */
	while (!(SYST_CSR & (1u << 16)))
		; /* COUNTFLAG: one full period elapsed */
	trace_puts("cm4: systick wrapped\n");
	for (;;)
		__asm volatile("wfi");
}
