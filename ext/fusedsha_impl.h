/*
 * Fused copy + SHA-256: one pass over the source, 64 bytes at a time.
 *
 * Each 64-byte block is loaded into four 128-bit registers once; the same
 * registers are stored to the destination and (byte-swapped) fed to the
 * SHA-256 rounds.  The memcpy therefore hides under the hash, and what is
 * hashed is by construction what was stored: a source changed by another
 * thread during the call cannot make the digest describe bytes that did not
 * land.
 *
 * Two instruction sets, chosen at run time (rp_fused_cpu_impl):
 *   - x86-64 SHA extensions (SHA-NI, with SSSE3 and SSE4.1), CPUID leaf 7;
 *   - Armv8 SHA-2 instructions (AArch64), HWCAP_SHA2 from the auxiliary
 *     vector, compiled only where the compiler offers them.
 * Each implementation is compiled with a target attribute, so the rest of
 * the module runs on any CPU of the architecture; the caller falls back to
 * the chunked copy-then-hashlib kernel when neither is present.
 *
 * Everything here runs without the GIL and touches no Python object.
 */
#ifndef RPROCTEE_FUSEDSHA_IMPL_H
#define RPROCTEE_FUSEDSHA_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RP_IMPL_NONE 0
#define RP_IMPL_X86_SHA 1
#define RP_IMPL_ARM_SHA2 2

static const uint32_t rp_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t rp_sha256_h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* ------------------------------------------------------------------------ */
#if defined(__x86_64__) || defined(_M_X64)
#define RP_HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>

static int rp_x86_has_sha(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 9)) || !(c & (1u << 19))) /* SSSE3, SSE4.1 */
        return 0;
    if (__get_cpuid_max(0, 0) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA */
}

/* ``nblocks`` blocks of ``src`` stored to ``dst`` and compressed into
 * ``state``; ``dst`` may be NULL (hash only, for the padding blocks). */
__attribute__((target("sha,sse4.1,ssse3")))
static void rp_x86_blocks(uint8_t *dst, const uint8_t *src, size_t nblocks,
                          uint32_t state[8])
{
    const __m128i MASK =
        _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0, s1, tmp, msg, abef, cdgh;
    __m128i m[4];

    tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    s1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);       /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);         /* EFGH */
    s0 = _mm_alignr_epi8(tmp, s1, 8);         /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);      /* CDGH */

    while (nblocks--) {
        __m128i d0 = _mm_loadu_si128((const __m128i *)(src + 0));
        __m128i d1 = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i d2 = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d3 = _mm_loadu_si128((const __m128i *)(src + 48));
        if (dst) {
            _mm_storeu_si128((__m128i *)(dst + 0), d0);
            _mm_storeu_si128((__m128i *)(dst + 16), d1);
            _mm_storeu_si128((__m128i *)(dst + 32), d2);
            _mm_storeu_si128((__m128i *)(dst + 48), d3);
            dst += 64;
        }
        src += 64;
        m[0] = _mm_shuffle_epi8(d0, MASK);
        m[1] = _mm_shuffle_epi8(d1, MASK);
        m[2] = _mm_shuffle_epi8(d2, MASK);
        m[3] = _mm_shuffle_epi8(d3, MASK);
        abef = s0;
        cdgh = s1;
        /* 16 groups of 4 rounds; group g consumes W[4g..4g+3] (m[g & 3]),
         * computes W of group g + 1 (msg2) and starts group g + 3 (msg1). */
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            msg = _mm_add_epi32(
                m[g & 3], _mm_loadu_si128((const __m128i *)&rp_sha256_k[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            if (g >= 3 && g < 15) {
                tmp = _mm_alignr_epi8(m[g & 3], m[(g - 1) & 3], 4);
                m[(g + 1) & 3] = _mm_add_epi32(m[(g + 1) & 3], tmp);
                m[(g + 1) & 3] = _mm_sha256msg2_epu32(m[(g + 1) & 3], m[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
            if (g >= 1 && g < 13)
                m[(g - 1) & 3] = _mm_sha256msg1_epu32(m[(g - 1) & 3], m[g & 3]);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }

    tmp = _mm_shuffle_epi32(s0, 0x1B);        /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);         /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);      /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);         /* ABEF */
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
}
/* Two independent messages in lockstep, ``nblocks`` blocks of each: the
 * SHA rounds of one fill the latency of the other's (sha256rnds2 is
 * latency-bound on one message), so one core hashes up to twice as fast.
 * Same stores and digests as two rp_x86_blocks calls. */
__attribute__((target("sha,sse4.1,ssse3")))
static void rp_x86_blocks2(uint8_t *dA, const uint8_t *sA, uint32_t stA[8],
                           uint8_t *dB, const uint8_t *sB, uint32_t stB[8], size_t nblocks)
{
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i a0, a1, b0, b1, t, u, mA, mB, aS0, aS1, bS0, bS1;
    __m128i ma[4], mb[4];
#define RP_LOADSTATE(st, s0, s1) \
    t = _mm_loadu_si128((const __m128i *)&st[0]); s1 = _mm_loadu_si128((const __m128i *)&st[4]); \
    t = _mm_shuffle_epi32(t, 0xB1); s1 = _mm_shuffle_epi32(s1, 0x1B); \
    s0 = _mm_alignr_epi8(t, s1, 8); s1 = _mm_blend_epi16(s1, t, 0xF0);
#define RP_SAVESTATE(st, s0, s1) \
    t = _mm_shuffle_epi32(s0, 0x1B); s1 = _mm_shuffle_epi32(s1, 0xB1); \
    s0 = _mm_blend_epi16(t, s1, 0xF0); s1 = _mm_alignr_epi8(s1, t, 8); \
    _mm_storeu_si128((__m128i *)&st[0], s0); _mm_storeu_si128((__m128i *)&st[4], s1);
    RP_LOADSTATE(stA, a0, a1)
    RP_LOADSTATE(stB, b0, b1)
    while (nblocks--) {
        for (int q = 0; q < 4; q++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(sA + 16 * q));
            __m128i y = _mm_loadu_si128((const __m128i *)(sB + 16 * q));
            if (dA) _mm_storeu_si128((__m128i *)(dA + 16 * q), x);
            if (dB) _mm_storeu_si128((__m128i *)(dB + 16 * q), y);
            ma[q] = _mm_shuffle_epi8(x, MASK);
            mb[q] = _mm_shuffle_epi8(y, MASK);
        }
        sA += 64; sB += 64; if (dA) dA += 64; if (dB) dB += 64;
        aS0 = a0; aS1 = a1; bS0 = b0; bS1 = b1;
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            __m128i k = _mm_loadu_si128((const __m128i *)&rp_sha256_k[4 * g]);
            mA = _mm_add_epi32(ma[g & 3], k);
            mB = _mm_add_epi32(mb[g & 3], k);
            a1 = _mm_sha256rnds2_epu32(a1, a0, mA);
            b1 = _mm_sha256rnds2_epu32(b1, b0, mB);
            if (g >= 3 && g < 15) {
                t = _mm_alignr_epi8(ma[g & 3], ma[(g - 1) & 3], 4);
                u = _mm_alignr_epi8(mb[g & 3], mb[(g - 1) & 3], 4);
                ma[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(ma[(g + 1) & 3], t), ma[g & 3]);
                mb[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(mb[(g + 1) & 3], u), mb[g & 3]);
            }
            mA = _mm_shuffle_epi32(mA, 0x0E);
            mB = _mm_shuffle_epi32(mB, 0x0E);
            a0 = _mm_sha256rnds2_epu32(a0, a1, mA);
            b0 = _mm_sha256rnds2_epu32(b0, b1, mB);
            if (g >= 1 && g < 13) {
                ma[(g - 1) & 3] = _mm_sha256msg1_epu32(ma[(g - 1) & 3], ma[g & 3]);
                mb[(g - 1) & 3] = _mm_sha256msg1_epu32(mb[(g - 1) & 3], mb[g & 3]);
            }
        }
        a0 = _mm_add_epi32(a0, aS0); a1 = _mm_add_epi32(a1, aS1);
        b0 = _mm_add_epi32(b0, bS0); b1 = _mm_add_epi32(b1, bS1);
    }
    RP_SAVESTATE(stA, a0, a1)
    RP_SAVESTATE(stB, b0, b1)
}
#undef RP_LOADSTATE
#undef RP_SAVESTATE
#endif /* x86-64 */

/* ------------------------------------------------------------------------ */
#if defined(__aarch64__) && defined(__GNUC__) && \
    (defined(__ARM_FEATURE_SHA2) || __GNUC__ >= 10 || defined(__clang__))
#define RP_HAVE_ARM 1
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1 << 6)
#endif
#endif

static int rp_arm_has_sha2(void)
{
#if defined(__ARM_FEATURE_SHA2)
    return 1;
#elif defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_SHA2) != 0;
#else
    return 0;
#endif
}

__attribute__((target("+sha2")))
static void rp_arm_blocks(uint8_t *dst, const uint8_t *src, size_t nblocks,
                          uint32_t state[8])
{
    uint32x4_t s0 = vld1q_u32(&state[0]);
    uint32x4_t s1 = vld1q_u32(&state[4]);
    while (nblocks--) {
        uint8x16_t d0 = vld1q_u8(src + 0), d1 = vld1q_u8(src + 16);
        uint8x16_t d2 = vld1q_u8(src + 32), d3 = vld1q_u8(src + 48);
        if (dst) {
            vst1q_u8(dst + 0, d0);
            vst1q_u8(dst + 16, d1);
            vst1q_u8(dst + 32, d2);
            vst1q_u8(dst + 48, d3);
            dst += 64;
        }
        src += 64;
        uint32x4_t m[4];
        m[0] = vreinterpretq_u32_u8(vrev32q_u8(d0));
        m[1] = vreinterpretq_u32_u8(vrev32q_u8(d1));
        m[2] = vreinterpretq_u32_u8(vrev32q_u8(d2));
        m[3] = vreinterpretq_u32_u8(vrev32q_u8(d3));
        uint32x4_t a0 = s0, a1 = s1;
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            uint32x4_t wk = vaddq_u32(m[g & 3], vld1q_u32(&rp_sha256_k[4 * g]));
            uint32x4_t prev = s0;
            s0 = vsha256hq_u32(s0, s1, wk);
            s1 = vsha256h2q_u32(s1, prev, wk);
            if (g < 12)
                m[g & 3] = vsha256su1q_u32(vsha256su0q_u32(m[g & 3], m[(g + 1) & 3]),
                                           m[(g + 2) & 3], m[(g + 3) & 3]);
        }
        s0 = vaddq_u32(s0, a0);
        s1 = vaddq_u32(s1, a1);
    }
    vst1q_u32(&state[0], s0);
    vst1q_u32(&state[4], s1);
}
#endif /* AArch64 */

/* ------------------------------------------------------------------------ */
/* Which implementation this CPU runs (RP_IMPL_*). */
static int rp_fused_cpu_impl(void)
{
#if defined(RP_HAVE_X86)
    if (rp_x86_has_sha())
        return RP_IMPL_X86_SHA;
#endif
#if defined(RP_HAVE_ARM)
    if (rp_arm_has_sha2())
        return RP_IMPL_ARM_SHA2;
#endif
    return RP_IMPL_NONE;
}

/* Whether ``impl`` was compiled into this build at all. */
static int rp_fused_compiled(int impl)
{
#if defined(RP_HAVE_X86)
    if (impl == RP_IMPL_X86_SHA)
        return 1;
#endif
#if defined(RP_HAVE_ARM)
    if (impl == RP_IMPL_ARM_SHA2)
        return 1;
#endif
    return 0;
}

static void rp_blocks(int impl, uint8_t *dst, const uint8_t *src,
                      size_t nblocks, uint32_t state[8])
{
#if defined(RP_HAVE_X86)
    if (impl == RP_IMPL_X86_SHA) {
        rp_x86_blocks(dst, src, nblocks, state);
        return;
    }
#endif
#if defined(RP_HAVE_ARM)
    if (impl == RP_IMPL_ARM_SHA2) {
        rp_arm_blocks(dst, src, nblocks, state);
        return;
    }
#endif
    (void)impl; (void)dst; (void)src; (void)nblocks; (void)state;
}

static void rp_blocks2(int impl, uint8_t *dA, const uint8_t *sA, uint32_t stA[8],
                       uint8_t *dB, const uint8_t *sB, uint32_t stB[8],
                       size_t nblocks)
{
#if defined(RP_HAVE_X86)
    if (impl == RP_IMPL_X86_SHA) {
        rp_x86_blocks2(dA, sA, stA, dB, sB, stB, nblocks);
        return;
    }
#endif
    rp_blocks(impl, dA, sA, nblocks, stA);
    rp_blocks(impl, dB, sB, nblocks, stB);
}

/* The last n % 64 bytes of a message: copied, then hashed from the
 * destination with the padding in a private block; digest to ``out``. */
static void rp_finish(int impl, uint8_t *dst, const uint8_t *src, size_t rest,
                      uint64_t n, uint32_t state[8], uint8_t out[32])
{
    uint8_t last[128];
    uint64_t bits = n * 8u;
    size_t pad = rest < 56 ? 64 : 128;
    int i;

    memset(last, 0, sizeof last);
    if (rest) {
        memcpy(dst, src, rest);
        memcpy(last, dst, rest);
    }
    last[rest] = 0x80;
    for (i = 0; i < 8; i++)
        last[pad - 1 - i] = (uint8_t)(bits >> (8 * i));
    rp_blocks(impl, NULL, last, pad / 64, state);
    for (i = 0; i < 8; i++) {
        out[4 * i + 0] = (uint8_t)(state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(state[i] >> 8);
        out[4 * i + 3] = (uint8_t)(state[i]);
    }
}

/* One copy+hash job of rp_fused_many. */
typedef struct {
    uint8_t *dst;
    const uint8_t *src;
    size_t n;
    uint8_t *out; /* 32 bytes */
} rp_job;

typedef struct {
    rp_job *job;
    uint8_t *dst;
    const uint8_t *src;
    size_t blocks;
    uint32_t state[8];
} rp_lane;

static int rp_lane_next(rp_lane *l, rp_job *jobs, size_t njobs, size_t *next)
{
    if (*next >= njobs) {
        l->job = NULL;
        return 0;
    }
    l->job = &jobs[(*next)++];
    l->dst = l->job->dst;
    l->src = l->job->src;
    l->blocks = l->job->n / 64;
    memcpy(l->state, rp_sha256_h0, sizeof l->state);
    return 1;
}

static void rp_lane_finish(int impl, rp_lane *l)
{
    rp_finish(impl, l->dst, l->src, l->job->n % 64, l->job->n, l->state,
              l->job->out);
}

/* Every job copied and hashed, two messages at a time in lockstep: when one
 * lane's message ends, the lane takes the next job.  Results do not depend
 * on the pairing (each message has its own state). */
static void rp_fused_many(int impl, rp_job *jobs, size_t njobs)
{
    rp_lane lane[2];
    size_t next = 0, k;
    int i;

    rp_lane_next(&lane[0], jobs, njobs, &next);
    rp_lane_next(&lane[1], jobs, njobs, &next);
    while (lane[0].job || lane[1].job) {
        if (lane[0].job && lane[1].job) {
            k = lane[0].blocks < lane[1].blocks ? lane[0].blocks : lane[1].blocks;
            if (k) {
                rp_blocks2(impl, lane[0].dst, lane[0].src, lane[0].state,
                           lane[1].dst, lane[1].src, lane[1].state, k);
                for (i = 0; i < 2; i++) {
                    lane[i].dst += 64 * k;
                    lane[i].src += 64 * k;
                    lane[i].blocks -= k;
                }
            }
        } else {
            rp_lane *l = lane[0].job ? &lane[0] : &lane[1];
            rp_blocks(impl, l->dst, l->src, l->blocks, l->state);
            l->dst += 64 * l->blocks;
            l->src += 64 * l->blocks;
            l->blocks = 0;
        }
        for (i = 0; i < 2; i++) {
            while (lane[i].job && lane[i].blocks == 0) {
                rp_lane_finish(impl, &lane[i]);
                rp_lane_next(&lane[i], jobs, njobs, &next);
            }
        }
    }
}

/* Copy ``n`` bytes ``src`` -> ``dst`` and write SHA-256 of them to ``out``.
 * ``impl`` must be one rp_fused_cpu_impl() returned (never RP_IMPL_NONE).
 * The tail (n % 64 bytes) is copied, then hashed from the destination, with
 * the padding, in a private block. */
static void rp_fused_copy_sha256(int impl, uint8_t *dst, const uint8_t *src,
                                 size_t n, uint8_t out[32])
{
    uint32_t state[8];
    size_t full = n / 64;

    memcpy(state, rp_sha256_h0, sizeof state);
    if (full)
        rp_blocks(impl, dst, src, full, state);
    rp_finish(impl, dst + 64 * full, src + 64 * full, n % 64, n, state, out);
}

/* Write-touch one byte per page of ``[p, p + n)`` without changing it: an
 * atomic OR with 0 is a write access (one write fault per page, no
 * zero-page read fault first) that no compiler may drop, and leaves the
 * byte as it is even if another thread writes it at the same time. */
static void rp_touch_pages(uint8_t *p, size_t n, size_t page)
{
    size_t off;
    for (off = 0; off < n; off += page)
        __atomic_fetch_or(p + off, (uint8_t)0, __ATOMIC_RELAXED);
    if (n)
        __atomic_fetch_or(p + n - 1, (uint8_t)0, __ATOMIC_RELAXED);
}

#endif /* RPROCTEE_FUSEDSHA_IMPL_H */
