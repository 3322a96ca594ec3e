/*
 * Hanging firmware: start the independent watchdog, feed it a few times,
 * log that it stops, then spin without feeding it (at hang_loop).
 */
#include "board.h"

static unsigned feeds = 3; /* in .data */

int main(void)
{
	IWDG_KR = IWDG_KEY_START;
	for (unsigned i = 0; i < feeds; i++)
		IWDG_KR = IWDG_KEY_RELOAD;
	trace_puts("cm4: watchdog fed, now hanging\n");
	__asm volatile(".global hang_loop\nhang_loop: b hang_loop");
	return 0;
}
