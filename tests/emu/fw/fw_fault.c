/*
 * Faulting firmware: log a trace line, then fault at the instruction
 * labelled fault_insn.  FAULT selects how:
 *   1 store through a bad pointer (nothing at 0x60000000): bus fault
 *   2 permanently undefined instruction (UDF): usage fault
 *   3 BKPT with no debugger attached: escalates to HardFault
 */
#include "board.h"

#ifndef FAULT
#define FAULT 1
#endif

static unsigned attempts = 1; /* in .data */

int main(void)
{
	trace_puts("cm4: about to fault\n");
	attempts++;
#if FAULT == 1
	__asm volatile(".global fault_insn\nfault_insn: str %1, [%0]"
		       :: "r"(0x60000000u), "r"(attempts) : "memory");
#elif FAULT == 2
	__asm volatile(".global fault_insn\nfault_insn: udf #42");
#elif FAULT == 3
	__asm volatile(".global fault_insn\nfault_insn: bkpt #7");
#endif
	trace_puts("cm4: still alive?\n");
	for (;;)
		;
}
