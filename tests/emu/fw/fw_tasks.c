/*
 * Two tasks on the process stack, switched by PendSV: an RTOS-style
 * context switch. SysTick (priority 0x80) pends PendSV (lowest priority);
 * PendSV saves r4-r11 on the running task's stack, swaps the saved PSPs
 * and returns with EXC_RETURN 0xFFFFFFFD into the other task. Each task
 * counts; task B logs one trace line the first time it runs.
 */
#include "board.h"

#define STACK_WORDS 128
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_SHPR3 REG32(0xE000ED20u)

static uint32_t stack_a[STACK_WORDS], stack_b[STACK_WORDS];
__attribute__((used)) static uint32_t *saved_sp[2];
__attribute__((used)) static volatile unsigned current, switches;
static volatile unsigned count_a, count_b;
static unsigned task_b_runs = 0x100; /* in .data */

static void task_a(void)
{
	for (;;)
		count_a++;
}

static void task_b(void)
{
	trace_puts("cm4: task b runs\n");
	task_b_runs++;
	for (;;)
		count_b++;
}

/* A new task's stack as PendSV_Handler pops it: r4-r11, then the frame. */
static uint32_t *new_task(uint32_t *top, void (*entry)(void))
{
	top -= 16;
	for (int i = 0; i < 16; i++)
		top[i] = 0;
	top[8 + 5] = 0xFFFFFFFFu;     /* lr */
	top[8 + 6] = (uint32_t)entry; /* pc */
	top[8 + 7] = 1u << 24;        /* xPSR: Thumb */
	return top;
}

void SysTick_Handler(void)
{
	SCB_ICSR = 1u << 28; /* PENDSVSET */
}

__attribute__((naked)) void PendSV_Handler(void)
{
	__asm volatile(
		"mrs r0, psp\n"
		"stmdb r0!, {r4-r11}\n"
		"ldr r1, =saved_sp\n"
		"ldr r2, =current\n"
		"ldr r3, [r2]\n"
		"str r0, [r1, r3, lsl #2]\n"
		"eor r3, r3, #1\n"
		"str r3, [r2]\n"
		"ldr r0, [r1, r3, lsl #2]\n"
		"ldmia r0!, {r4-r11}\n"
		"msr psp, r0\n"
		"ldr r2, =switches\n"
		"ldr r3, [r2]\n"
		"adds r3, #1\n"
		"str r3, [r2]\n"
		"bx lr\n");
}

int main(void)
{
	saved_sp[1] = new_task(stack_b + STACK_WORDS, task_b);
	current = 0;
	SCB_SHPR3 = (0x80u << 24) | (0xFFu << 16); /* SysTick 0x80, PendSV 0xFF */
	SYST_RVR = 999;
	SYST_CVR = 0;
	SYST_CSR = 1 | 2 | 4;
	/* task A runs on its own process stack from here on */
	__asm volatile("msr psp, %0\n"
		       "msr control, %1\n"
		       "isb\n"
		       :: "r"(stack_a + STACK_WORDS), "r"(2u) : "memory");
	task_a();
	return 0;
}
