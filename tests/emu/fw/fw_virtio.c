/*
 * Virtio handshake and echo: log a trace line, mark the rpmsg vdev
 * DRIVER_OK in the resource table, ring the host's doorbell (IPCC channel
 * 0 = vq0), then sleep (WFI) between polls. On each host doorbell on
 * channel 1 (vq1) it logs a trace line, copies every buffer the host made
 * available in vring 1 (host -> remote) into the next buffer the host made
 * available in vring 0 (remote -> host), returns both through the used
 * rings, and rings the host back on channel 0. A doorbell on channel 5
 * (unused by the stm32 driver) asks it to crash: it logs a line and stores
 * through a bad pointer at crash_insn (a bus fault).
 *
 * The vrings are legacy split virtqueues (include/uapi/linux/virtio_ring.h)
 * at the addresses the resource table gives after the host wrote it.
 */
#include "board.h"

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vring_used_elem {
	uint32_t id, len;
};

struct vring {
	unsigned num;
	volatile struct vring_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[num], used_event */
	volatile uint16_t *used;  /* flags, idx, then ring[num] of used_elem */
};

#define CRASH_CHANNEL 5

static unsigned kicks_seen = 1; /* in .data: the loader writes it */
static uint16_t last_avail[2];

static void vring_at(struct vring *vr, unsigned i)
{
	volatile struct fw_rsc_vdev_vring *rsc = &resource_table.vdev.vring[i];
	uint32_t da = rsc->da, align = rsc->align;
	uint32_t used;

	vr->num = rsc->num;
	vr->desc = (volatile struct vring_desc *)da;
	vr->avail = (volatile uint16_t *)(da + 16 * vr->num);
	used = (uint32_t)&vr->avail[3 + vr->num];
	vr->used = (volatile uint16_t *)((used + align - 1) & ~(align - 1));
}

/* Next buffer the host made available, or -1. */
static int vring_get(struct vring *vr, unsigned i)
{
	if (last_avail[i] == vr->avail[1])
		return -1;
	return vr->avail[2 + last_avail[i]++ % vr->num];
}

static void vring_put(struct vring *vr, unsigned id, uint32_t len)
{
	uint16_t idx = vr->used[1];
	volatile struct vring_used_elem *elem =
		(volatile struct vring_used_elem *)&vr->used[2] + idx % vr->num;

	elem->id = id;
	elem->len = len;
	__asm volatile("dmb" ::: "memory"); /* the element before the index */
	vr->used[1] = idx + 1;
}

static void echo(void)
{
	struct vring to_host, from_host;
	int in, out;

	vring_at(&to_host, 0);
	vring_at(&from_host, 1);
	while ((in = vring_get(&from_host, 1)) >= 0) {
		volatile struct vring_desc *src = &from_host.desc[in];
		uint32_t len = src->len;

		out = vring_get(&to_host, 0);
		if (out >= 0) {
			volatile struct vring_desc *dst = &to_host.desc[out];
			volatile uint8_t *s = (volatile uint8_t *)(uint32_t)src->addr;
			volatile uint8_t *d = (volatile uint8_t *)(uint32_t)dst->addr;
			uint32_t n = len < dst->len ? len : dst->len;

			for (uint32_t k = 0; k < n; k++)
				d[k] = s[k];
			vring_put(&to_host, out, n);
		}
		vring_put(&from_host, in, len);
	}
}

int main(void)
{
	volatile uint8_t *status = &resource_table.vdev.status;

	trace_puts("cm4: virtio firmware up\n");
	*status |= VIRTIO_CONFIG_S_DRIVER_OK;
	ipcc_kick(0);
	for (;;) {
		if (IPCC_C1TOC2SR & (1u << CRASH_CHANNEL)) {
			IPCC_C2SCR = 1u << CRASH_CHANNEL;
			trace_puts("cm4: crash requested\n");
			__asm volatile(".global crash_insn\ncrash_insn: str %1, [%0]"
				       :: "r"(0x60000000u), "r"(kicks_seen) : "memory");
		}
		if (IPCC_C1TOC2SR & (1u << 1)) {
			IPCC_C2SCR = 1u << 1; /* clear: message taken */
			trace_puts("cm4: host kick\n");
			kicks_seen++;
			echo();
			ipcc_kick(0);
		}
		__asm volatile("wfi");
	}
}
