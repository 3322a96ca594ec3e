"""Bounds-checked scan of ELF32/ELF64 headers into uint64 tables.

Returns plain numbers and ``(n, 8)`` / ``(n, 10)`` uint64 arrays, so callers
never build per-segment Python objects on the hot path.  The rules (and their
messages) are shared with the reference twin through ``rproctee._elf_rules``.
"""

import numpy as np

from libc.stdint cimport uint8_t, uint64_t

from rproctee._elf_rules import (
    EHDR_FIELDS,
    PHDR_FIELDS,
    SHDR_FIELDS,
    check_ident,
    check_shstrndx,
    check_table,
)


cdef inline uint64_t _rd(const uint8_t[::1] b, Py_ssize_t off, int width,
                         bint big) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    if big:
        for i in range(width):
            v = (v << 8) | b[off + i]
    else:
        for i in range(width - 1, -1, -1):
            v = (v << 8) | b[off + i]
    return v


cdef void _fill_table(const uint8_t[::1] b, Py_ssize_t base, Py_ssize_t entsize,
                      uint64_t[:, ::1] out, const long[:, ::1] fields,
                      bint big) noexcept nogil:
    cdef Py_ssize_t i, f
    for i in range(out.shape[0]):
        for f in range(out.shape[1]):
            out[i, f] = _rd(b, base + i * entsize + fields[f, 0],
                            <int>fields[f, 1], big)


def _table(const uint8_t[::1] b, off, num, entsize, fields, bint big):
    out = np.zeros((num, len(fields)), dtype=np.uint64)
    if num == 0:
        return out
    cdef uint64_t[:, ::1] dst = out
    cdef const long[:, ::1] spec = np.ascontiguousarray(fields, dtype=np.int_)
    cdef Py_ssize_t start = off, step = entsize
    with nogil:
        _fill_table(b, start, step, dst, spec, big)
    return out


def scan_headers(const uint8_t[::1] buf not None):
    """Scan an ELF file's header, program-header and section-header tables.

    Parameters
    ----------
    buf : readable uint8 buffer
        The whole ELF file.

    Returns
    -------
    tuple
        ``(ident, ehdr, phdrs, shdrs)``: ``ident`` is ``(ei_class, ei_data,
        ei_version, ei_osabi)``; ``ehdr`` the 13 header fields from ``e_type``
        to ``e_shstrndx``; ``phdrs`` an ``(e_phnum, 8)`` and ``shdrs`` an
        ``(e_shnum, 10)`` uint64 array, columns in ELF32 field order.

    Raises
    ------
    ValueError
        A header rule is broken; the message names the field and value.
    """
    cdef Py_ssize_t n = buf.shape[0]
    magic = bytes(buf[:4]) if n >= 4 else b""
    cls = buf[4] if n > 4 else 0
    data = buf[5] if n > 5 else 0
    check_ident(n, magic, cls, data)
    cdef bint big = data == 2
    ident = (cls, data, buf[6], buf[7])
    ehdr = tuple(_rd(buf, o, w, big) for o, w in EHDR_FIELDS[cls])
    phoff, shoff = ehdr[4], ehdr[5]
    phent, phnum, shent, shnum, shstrndx = ehdr[8:13]
    check_table("program", cls, phoff, phnum, phent, n)
    check_table("section", cls, shoff, shnum, shent, n)
    check_shstrndx(shstrndx, shnum)
    phdrs = _table(buf, phoff, phnum, phent, PHDR_FIELDS[cls], big)
    shdrs = _table(buf, shoff, shnum, shent, SHDR_FIELDS[cls], big)
    return ident, ehdr, phdrs, shdrs
