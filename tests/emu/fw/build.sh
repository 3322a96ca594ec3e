#!/usr/bin/env bash
# Build the emulated-core test firmware with Debian's gcc-arm-none-eabi
# (apt-get install gcc-arm-none-eabi). The ELFs are committed beside these
# sources so the tests never need the toolchain; run this after editing.
# OUT=DIR writes the ELFs there instead (the tests rebuild into a temporary
# directory and compare, when the toolchain is installed).
set -euo pipefail
cd "$(dirname "$0")"
CC=${CC:-arm-none-eabi-gcc}
OUT=${OUT:-.}
CFLAGS=(-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -g0 -std=c11 -Wall -Wextra
        -ffreestanding -fno-common -ffunction-sections -fno-tree-loop-distribute-patterns
        -ffile-prefix-map="$PWD"=.)
LDFLAGS=(-nostdlib -nostartfiles -T cm4.ld -Wl,--gc-sections -Wl,--build-id=none)

build() { # out.elf source [defines...]
    local out=$1 src=$2
    shift 2
    "$CC" "${CFLAGS[@]}" "$@" "${LDFLAGS[@]}" -o "$OUT/$out" common.c "$src" -lgcc
    echo "built $OUT/$out"
}

pids=()
while read -r out src defines; do
    # shellcheck disable=SC2086 # defines split into words on purpose
    build "$out" "$src" $defines &
    pids+=($!)
done <<'LIST'
fw_virtio.elf fw_virtio.c
fw_uart.elf fw_uart.c
fw_hang.elf fw_hang.c
fw_irq.elf fw_irq.c
fw_tasks.elf fw_tasks.c
fw_fault_bus.elf fw_fault.c -DFAULT=1
fw_fault_udf.elf fw_fault.c -DFAULT=2
fw_fault_bkpt.elf fw_fault.c -DFAULT=3
LIST
for pid in "${pids[@]}"; do
    wait "$pid"
done
# the compiler that built the ELFs: the tests compare byte for byte only
# when the same one is installed
"$CC" --version | head -n 1 > "$OUT/toolchain.txt"
