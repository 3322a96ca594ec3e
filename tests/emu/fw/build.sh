#!/usr/bin/env bash
# Build the emulated-core test firmware with Debian's gcc-arm-none-eabi
# (apt-get install gcc-arm-none-eabi). The ELFs are committed beside these
# sources so the tests never need the toolchain; run this after editing.
set -euo pipefail
cd "$(dirname "$0")"
CC=${CC:-arm-none-eabi-gcc}
CFLAGS=(-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -g0 -std=c11 -Wall -Wextra
        -ffreestanding -fno-common -ffunction-sections -fno-tree-loop-distribute-patterns
        -ffile-prefix-map="$PWD"=.)
LDFLAGS=(-nostdlib -nostartfiles -T cm4.ld -Wl,--gc-sections -Wl,--build-id=none)

build() { # out.elf source [defines...]
    local out=$1 src=$2
    shift 2
    "$CC" "${CFLAGS[@]}" "$@" "${LDFLAGS[@]}" -o "$out" common.c "$src" -lgcc
    echo "built $out"
}

build fw_virtio.elf fw_virtio.c
build fw_uart.elf fw_uart.c
build fw_hang.elf fw_hang.c
build fw_irq.elf fw_irq.c
build fw_fault_bus.elf fw_fault.c -DFAULT=1
build fw_fault_udf.elf fw_fault.c -DFAULT=2
build fw_fault_bkpt.elf fw_fault.c -DFAULT=3
