# Overflow-safe interval predicates shared by the kernels (declarations only).
from libc.stdint cimport uint64_t


cdef inline bint fits_u64(uint64_t off, uint64_t size, uint64_t limit) noexcept nogil:
    # [off, off+size) inside [0, limit), never forming off + size.
    return size <= limit and off <= limit - size


cdef inline bint contains_u64(uint64_t base, uint64_t rsize,
                              uint64_t addr, uint64_t size) noexcept nogil:
    # [addr, addr+size) inside [base, base+rsize); a region may end at 2**64.
    return addr >= base and size <= rsize and addr - base <= rsize - size


cdef inline bint intersects_u64(uint64_t base, uint64_t rsize,
                                uint64_t addr, uint64_t size) noexcept nogil:
    # Non-empty intersection of two non-empty half-open intervals.
    if addr >= base:
        return addr - base < rsize
    return base - addr < size
