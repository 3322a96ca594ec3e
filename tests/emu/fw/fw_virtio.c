/*
 * Virtio handshake: log a trace line, mark the rpmsg vdev DRIVER_OK in the
 * resource table, ring the host's doorbell (IPCC channel 0 = vq0), then
 * answer every host doorbell on channel 1 with a trace line and a kick back,
 * sleeping (WFI) between polls.
 */
#include "board.h"

static unsigned kicks_seen = 1; /* in .data: the loader writes it */

int main(void)
{
	volatile uint8_t *status = &resource_table.vdev.status;

	trace_puts("cm4: virtio firmware up\n");
	*status |= VIRTIO_CONFIG_S_DRIVER_OK;
	ipcc_kick(0);
	for (;;) {
		if (IPCC_C1TOC2SR & (1u << 1)) {
			IPCC_C2SCR = 1u << 1; /* clear: message taken */
			trace_puts("cm4: host kick\n");
			kicks_seen++;
			ipcc_kick(0);
		}
		__asm volatile("wfi");
	}
}
