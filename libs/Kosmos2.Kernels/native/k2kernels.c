/*
 * bf16 kernels for the Kosmos-2 decoder: weight x activation products and per-query attention.
 *
 * Batch invariance by construction: every output element is reduced over K in ONE fixed order, whatever the row
 * count, the row's place, the tile it falls in or the thread that computes it:
 *   16 float32 lanes; lane j takes the pairs (k = 32c + 2j + 1, then 32c + 2j) of each 32-wide chunk c, in c order,
 *   each product added with its own rounding (the order of AVX512-BF16 vdpbf16ps); a K tail reads zeros;
 *   then lanes fold as l[i] += l[i+8], l[i] += l[i+4], l[i] += l[i+2], l[0] + l[1].
 * Callers split work over output features (never over K). The portable path computes the same sequence in scalar C;
 * the AVX2 path holds the 16 lanes as two 8-float halves (lanes 0-7 take k = 32c + 0..15, lanes 8-15 take
 * k = 32c + 16..31) and widens bf16 to float32 by a 16-bit shift.
 * bf16 x bf16 products are exact in float32 (8 + 8 significant bits), so fused and separate multiply-add agree.
 * Denormals: vdpbf16ps flushes them (DAZ/FTZ); the portable path flushes each input and partial sum; the AVX2 path sets
 * MXCSR DAZ/FTZ for the call. The three agree bit for bit while products and partial sums stay above 1.2e-38 in
 * magnitude; below that, the ISAs may differ in the last bits (one ISA is always equal to itself, which is what batch
 * invariance needs).
 * Built with -ffp-contract=off: no silent fusing of the scalar reference's a*b+c.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K2_ISA_SCALAR 0
#define K2_ISA_AVX2 1
#define K2_ISA_AVX512BF16 2

#define K2_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define K2_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define K2_INLINE static inline __attribute__((always_inline))

int k2_version(void) { return 3; }

/* The best ISA this CPU runs (the caller may still ask for the portable path). */
int k2_best_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw")) return K2_ISA_AVX512BF16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return K2_ISA_AVX2;
    return K2_ISA_SCALAR;
}

static inline float bf16_to_f32(uint16_t v)
{
    uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest even, as torch's float -> bfloat16 (NaN stays a quiet NaN). */
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
    {
        return (uint16_t)((bits >> 16) | 0x40);
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* vdpbf16ps treats denormal inputs as zero and flushes denormal results (DAZ/FTZ); the portable path does the same. */
static inline float daz(float f) { return fabsf(f) < 1.17549435e-38f ? copysignf(0.0f, f) : f; }

/* ---------------------------------------------------------------- portable path */

static float dot_scalar(const uint16_t* x, const uint16_t* w, int64_t k)
{
    float lane[16] = {0};
    for (int64_t c = 0; c < k; c += 32)
    {
        for (int j = 0; j < 16; j++)
        {
            int64_t odd = c + 2 * j + 1, even = c + 2 * j;
            float xo = odd < k ? daz(bf16_to_f32(x[odd])) : 0.0f, wo = odd < k ? daz(bf16_to_f32(w[odd])) : 0.0f;
            float xe = even < k ? daz(bf16_to_f32(x[even])) : 0.0f, we = even < k ? daz(bf16_to_f32(w[even])) : 0.0f;
            float acc = daz(lane[j]);
            acc = daz(acc + xo * wo);
            acc = daz(acc + xe * we);
            lane[j] = acc;
        }
    }
    for (int i = 0; i < 8; i++) lane[i] += lane[i + 8];
    for (int i = 0; i < 4; i++) lane[i] += lane[i + 4];
    for (int i = 0; i < 2; i++) lane[i] += lane[i + 2];
    return lane[0] + lane[1];
}

/* ---------------------------------------------------------------- AVX512-BF16 path */

/* The lane fold above, spelled with the same pairings. */
K2_INLINE K2_TARGET float hsum16(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); /* l[i] + l[i+8] */
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));      /* + l[i+4] */
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));                                       /* + l[i+2] */
    __m128 d = _mm_add_ss(c, _mm_shuffle_ps(c, c, 1));                                   /* l0 + l1 */
    return _mm_cvtss_f32(d);
}

/*
 * Register-blocked micro-kernel: MR activation rows x NR weight rows, k innermost, MR*NR accumulators held in
 * registers (4 x 6 = 24 zmm + 6 weight vectors + 1 activation vector of 32). Each weight vector loaded once per
 * chunk serves all MR rows. Runs one K block [0, k) of the pointers given: the 16 lanes of each accumulator start at
 * zero (first) or from lanes[] where the previous block left them, and end folded into out[] (last) or back in
 * lanes[] - the same sequence of roundings per element as one pass over K. Rows [pf0, pf1) of the next weight block
 * (pf, stride ldw) are prefetched, one 64-byte line per row per chunk (see k2_linear_bf16).
 */
K2_INLINE K2_TARGET void tile_bf16(int MR, int NR, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t k,
    float* lanes, int first, int last, float* out, const uint16_t* pf, int pf0, int pf1)
{
    __m512 acc[4][6];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(lanes + (i * 6 + j) * 16);
    int64_t c = 0;
    for (; c + 32 <= k; c += 32)
    {
        for (int j = pf0; j < pf1; j++) _mm_prefetch((const char*)(pf + j * ldw + c), _MM_HINT_T0);
        __m512bh wv[6];
        for (int j = 0; j < NR; j++) wv[j] = (__m512bh)_mm512_loadu_si512((const void*)(w + j * ldw + c));
        for (int i = 0; i < MR; i++)
        {
            __m512bh xv = (__m512bh)_mm512_loadu_si512((const void*)(x + i * ldx + c));
            for (int j = 0; j < NR; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
        }
    }
    if (c < k)
    {
        __mmask32 m = (__mmask32)((1ull << (k - c)) - 1);
        __m512bh wv[6];
        for (int j = 0; j < NR; j++) wv[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + j * ldw + c);
        for (int i = 0; i < MR; i++)
        {
            __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x + i * ldx + c);
            for (int j = 0; j < NR; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
        {
            if (last) out[i * NR + j] = hsum16(acc[i][j]);
            else _mm512_storeu_ps(lanes + (i * 6 + j) * 16, acc[i][j]);
        }
}

#define TILE_CASE(mr, nr) case (mr) * 8 + (nr): tile_bf16(mr, nr, x, ldx, w, ldw, k, lanes, first, last, out, pf, pf0, pf1); break;
#define TILE_ROW(mr) TILE_CASE(mr, 1) TILE_CASE(mr, 2) TILE_CASE(mr, 3) TILE_CASE(mr, 4) TILE_CASE(mr, 5) TILE_CASE(mr, 6)

static K2_TARGET void tile_any(int mr, int nr, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t k,
    float* lanes, int first, int last, float* out, const uint16_t* pf, int pf0, int pf1)
{
    switch (mr * 8 + nr)
    {
        TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4)
        default: break;
    }
}

/*
 * Decode rows (1-2): each weight serves at most 2 rows, so there is nothing to block for; the weights stream once from
 * memory and speed is the number of loads in flight. Tiles of MR rows x 12 features (24 accumulators at 2 rows), the
 * whole of K in one pass, a K tail read masked (zeros). Same order per element as tile_bf16. On a 2-core AMD Zen 5
 * (2026-12-02), one row through the decoder's 2.68 GB of weights on 2 threads: best 61.2 ms against 64.9 ms with the
 * 4 x 6 tiles, means 63-65 against 75 ms (8 rounds, interleaved; a plain vectorised read of the same bytes took 58 ms
 * then). A 16-feature variant was no better than 6.
 */
enum { STREAM_NR = 12 };

K2_INLINE K2_TARGET void stream_tile_bf16(int MR, int NR, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t k,
    float* out)
{
    __m512 acc[2][STREAM_NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= k; c += 32)
    {
        __m512bh xv[2];
        for (int i = 0; i < MR; i++) xv[i] = (__m512bh)_mm512_loadu_si512((const void*)(x + i * ldx + c));
        for (int j = 0; j < NR; j++)
        {
            __m512bh wv = (__m512bh)_mm512_loadu_si512((const void*)(w + j * ldw + c));
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
        }
    }
    if (c < k)
    {
        __mmask32 m = (__mmask32)((1ull << (k - c)) - 1);
        __m512bh xv[2];
        for (int i = 0; i < MR; i++) xv[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, x + i * ldx + c);
        for (int j = 0; j < NR; j++)
        {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + j * ldw + c);
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) out[i * NR + j] = hsum16(acc[i][j]);
}

#define STREAM_CASE(mr, nr) case (mr) * 16 + (nr): stream_tile_bf16(mr, nr, x, ldx, w, ldw, k, out); break;
#define STREAM_ROW(mr) STREAM_CASE(mr, 1) STREAM_CASE(mr, 2) STREAM_CASE(mr, 3) STREAM_CASE(mr, 4) STREAM_CASE(mr, 5) \
    STREAM_CASE(mr, 6) STREAM_CASE(mr, 7) STREAM_CASE(mr, 8) STREAM_CASE(mr, 9) STREAM_CASE(mr, 10) STREAM_CASE(mr, 11) STREAM_CASE(mr, 12)

static K2_TARGET void stream_tile_any(int mr, int nr, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t k, float* out)
{
    switch (mr * 16 + nr)
    {
        STREAM_ROW(1) STREAM_ROW(2)
        default: break;
    }
}

static void store(float v, const uint16_t* bias, int64_t n, void* y, int64_t ldy, int y_f32, int64_t m)
{
    if (bias) v += bf16_to_f32(bias[n]);
    if (y_f32) ((float*)y)[m * ldy + n] = v;
    else ((uint16_t*)y)[m * ldy + n] = f32_to_bf16(v);
}

/* ---------------------------------------------------------------- AVX2 + FMA path */

/*
 * Micro-kernel shape: A2_MR activation rows x A2_NR weight rows, one accumulator of 8 lanes each per lane half, k
 * innermost: 8 accumulators + 4 widened weight vectors + 1 activation vector of the 16 ymm registers.
 */
enum { A2_MR = 4, A2_NR = 2 };

/*
 * Activation rows widened once per call to float32 in the lanes' layout, K padded with zeros to a multiple of 32:
 * per 32-wide chunk and half h (k = 32c + 16h ..), 8 odd-k values (lane j: k = .. + 2j + 1), then the 8 even-k values.
 */
static void widen_rows(const uint16_t* x, int64_t rows, int64_t ldx, int64_t k, float* xf, int64_t kpad)
{
    for (int64_t m = 0; m < rows; m++)
    {
        const uint16_t* src = x + m * ldx;
        float* dst = xf + m * kpad;
        for (int64_t base = 0; base < kpad; base += 16)
            for (int j = 0; j < 8; j++)
            {
                int64_t even = base + 2 * j, odd = even + 1;
                dst[base + j] = odd < k ? bf16_to_f32(src[odd]) : 0.0f;
                dst[base + 8 + j] = even < k ? bf16_to_f32(src[even]) : 0.0f;
            }
    }
}

/*
 * One lane half h of an MR x NR tile over `chunks` 32-wide chunks (then one zero-padded tail chunk from wtail, rows of
 * 32, when given): per lane, the odd-k product then the even-k product, each fused into the accumulator (exact
 * products, one rounding per add). Lanes start at zero (first) or from lanes[] and are left in lanes[].
 */
K2_INLINE K2_TARGET_AVX2 void tile_avx2(int MR, int NR, const float* xf, int64_t ldxf, const uint16_t* w, int64_t ldw,
    int64_t chunks, const uint16_t* wtail, int h, float* lanes, int first)
{
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc[A2_MR][A2_NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(lanes + (i * A2_NR + j) * 16 + 8 * h);
    for (int64_t c = 0; c <= chunks; c++)
    {
        const uint16_t* wc = w + 32 * c;
        int64_t stride = ldw;
        if (c == chunks)
        {
            if (!wtail) break;
            wc = wtail;
            stride = 32;
        }
        __m256 wo[A2_NR], we[A2_NR];
        for (int j = 0; j < NR; j++)
        {
            __m256i v = _mm256_loadu_si256((const __m256i*)(wc + j * stride + 16 * h));
            wo[j] = _mm256_castsi256_ps(_mm256_and_si256(v, high));
            we[j] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        }
        for (int i = 0; i < MR; i++)
        {
            const float* xp = xf + i * ldxf + 32 * c + 16 * h;
            __m256 xo = _mm256_loadu_ps(xp);
            for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(xo, wo[j], acc[i][j]);
            __m256 xe = _mm256_loadu_ps(xp + 8);
            for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(xe, we[j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) _mm256_storeu_ps(lanes + (i * A2_NR + j) * 16 + 8 * h, acc[i][j]);
}

#define A2_CASE(mr, nr) case (mr) * 8 + (nr): tile_avx2(mr, nr, xf, ldxf, w, ldw, chunks, wtail, h, lanes, first); break;

static K2_TARGET_AVX2 void tile_avx2_any(int mr, int nr, const float* xf, int64_t ldxf, const uint16_t* w, int64_t ldw,
    int64_t chunks, const uint16_t* wtail, int h, float* lanes, int first)
{
    switch (mr * 8 + nr)
    {
        A2_CASE(1, 1) A2_CASE(1, 2) A2_CASE(2, 1) A2_CASE(2, 2) A2_CASE(3, 1) A2_CASE(3, 2) A2_CASE(4, 1) A2_CASE(4, 2)
        default: break;
    }
}

/* The lane fold of the header: l[i] += l[i+8] (the two halves), l[i] += l[i+4], l[i] += l[i+2], l0 + l1. */
static float fold16(const float* l)
{
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = l[i] + l[i + 8];
    for (int i = 0; i < 4; i++) a[i] += a[i + 4];
    for (int i = 0; i < 2; i++) a[i] += a[i + 2];
    return a[0] + a[1];
}

static K2_TARGET_AVX2 void linear_avx2(const uint16_t* x, int64_t rows, int64_t ldx, const uint16_t* w, int64_t k, int64_t ldw,
    const uint16_t* bias, void* y, int64_t ldy, int y_f32, int64_t n0, int64_t n1, float* xf, int64_t rowBlock)
{
    /*
     * Blocking (speed only; every element keeps its order): row blocks whose float32 activations stay in L2
     * (rowBlock, chosen by the caller); K blocks of 1,024 so a tile's rows (16 KiB) and weights (4 KiB) stay in L1
     * while the row tiles of the block pass the same weights.
     */
    enum { KBLOCK = 1024, MAXROWBLOCK = 128 };
    int64_t kpad = (k + 31) / 32 * 32;
    float lanes[MAXROWBLOCK / A2_MR][A2_MR * A2_NR * 16];
    uint16_t wtail[A2_NR * 32];
    for (int64_t m0 = 0; m0 < rows; m0 += rowBlock)
    {
        int64_t m1 = m0 + rowBlock < rows ? m0 + rowBlock : rows;
        widen_rows(x + m0 * ldx, m1 - m0, ldx, k, xf, kpad);
        for (int64_t n = n0; n < n1; n += A2_NR)
        {
            int nr = (int)(n1 - n < A2_NR ? n1 - n : A2_NR);
            for (int64_t kb = 0; kb < kpad || kb == 0; kb += KBLOCK)
            {
                int64_t kl = kpad - kb < KBLOCK ? kpad - kb : KBLOCK;
                int first = kb == 0, last = kb + KBLOCK >= kpad;
                /* Full chunks read the weights in place; a chunk running past k reads a zero-padded copy. */
                int64_t full = (k - kb) / 32 < kl / 32 ? (k - kb) / 32 : kl / 32;
                const uint16_t* tail = NULL;
                if (full < kl / 32)
                {
                    memset(wtail, 0, sizeof wtail);
                    for (int j = 0; j < nr; j++) memcpy(wtail + 32 * j, w + (n + j) * ldw + kb + 32 * full, sizeof(uint16_t) * (size_t)(k - kb - 32 * full));
                    tail = wtail;
                }
                for (int64_t m = m0; m < m1; m += A2_MR)
                {
                    int mr = (int)(m1 - m < A2_MR ? m1 - m : A2_MR);
                    float* l = lanes[(m - m0) / A2_MR];
                    for (int h = 0; h < 2; h++)
                        tile_avx2_any(mr, nr, xf + (m - m0) * kpad + kb, kpad, w + n * ldw + kb, ldw, full, tail, h, l, first);
                    if (!last) continue;
                    for (int i = 0; i < mr; i++)
                        for (int j = 0; j < nr; j++) store(fold16(l + (i * A2_NR + j) * 16), bias, n + j, y, ldy, y_f32, m + i);
                }
            }
        }
    }
}

/* Runs linear_avx2 with vdpbf16ps' denormal rules (MXCSR DAZ | FTZ) and a scratch block for the widened rows. */
static void linear_avx2_call(const uint16_t* x, int64_t rows, int64_t ldx, const uint16_t* w, int64_t k, int64_t ldw,
    const uint16_t* bias, void* y, int64_t ldy, int y_f32, int64_t n0, int64_t n1)
{
    enum { STACKFLOATS = 8192 };
    int64_t kpad = (k + 31) / 32 * 32;
    if (kpad == 0) kpad = 32;
    int64_t rowBlock = (256 * 1024) / (4 * kpad); /* float32 rows of one block: 256 KiB, half of L2 */
    rowBlock = rowBlock < A2_MR ? A2_MR : rowBlock > 128 ? 128 : rowBlock - rowBlock % A2_MR;
    if (rowBlock > rows) rowBlock = rows < 1 ? 1 : rows;
    float stackBuffer[STACKFLOATS];
    float* xf = rowBlock * kpad <= STACKFLOATS ? stackBuffer : (float*)malloc(sizeof(float) * (size_t)(rowBlock * kpad));
    if (!xf) abort();
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);
    linear_avx2(x, rows, ldx, w, k, ldw, bias, y, ldy, y_f32, n0, n1, xf, rowBlock);
    _mm_setcsr(csr);
    if (xf != stackBuffer) free(xf);
}

/*
 * K block of the AVX512-BF16 path: the largest multiple of 256 whose 6-feature weight block (6 x 2 bytes per k) fills
 * at most half of this CPU's L1 data cache, so the row tiles' activations have the other half. Each K block costs every
 * tile a store and reload of its 24 accumulators, so the block should be as long as L1 allows: on a 48 KiB L1 (AMD
 * Zen 5, 2026-12-02) 2,048 ran 15-20% faster than 1,024 at 16-128 rows, and 8,192 (no blocking) 20% slower at K = 8,192.
 */
static int64_t kblock_bf16(void)
{
    static int64_t cached;
    if (cached) return cached;
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    if (l1 <= 0) l1 = 32 * 1024;
    int64_t kb = (int64_t)l1 / 2 / (6 * 2) / 256 * 256;
    cached = kb < 256 ? 256 : kb > 8192 ? 8192 : kb;
    return cached;
}

/* For logs and tests: the K block this CPU gets. */
int64_t k2_kblock_bf16(void) { return kblock_bf16(); }

/*
 * The share of the next weight block that row tile `tile` of `tiles` prefetches: rows (or groups) [*from, *to) of the
 * block's `count`, split evenly so the block is fetched once while the current one's tiles run.
 */
static inline void prefetch_share(int tile, int tiles, int count, int* from, int* to)
{
    int per = (count + tiles - 1) / tiles;
    *from = tile * per < count ? tile * per : count;
    *to = *from + per < count ? *from + per : count;
}

/*
 * y[m, n] = sum_k x[m, k] w[n, k] (+ bias[n]) for every row m < rows and features n in [n0, n1).
 * x: bf16 rows of stride ldx; w: bf16 [N, k] rows of stride ldw; bias: bf16 [N] or NULL; y: float32 (y_f32) or bf16,
 * rows of stride ldy. The element's value does not depend on rows, n0, n1 or how rows are blocked.
 */
void k2_linear_bf16(const uint16_t* x, int64_t rows, int64_t ldx, const uint16_t* w, int64_t k, int64_t ldw,
    const uint16_t* bias, void* y, int64_t ldy, int y_f32, int64_t n0, int64_t n1, int isa)
{
    if (isa == K2_ISA_AVX2)
    {
        linear_avx2_call(x, rows, ldx, w, k, ldw, bias, y, ldy, y_f32, n0, n1);
        return;
    }
    if (isa != K2_ISA_AVX512BF16)
    {
        for (int64_t n = n0; n < n1; n++)
            for (int64_t m = 0; m < rows; m++) store(dot_scalar(x + m * ldx, w + n * ldw, k), bias, n, y, ldy, y_f32, m);
        return;
    }
    if (rows <= 2) /* decode rows: stream tiles, no blocking */
    {
        float out[2 * STREAM_NR];
        for (int64_t n = n0; n < n1; n += STREAM_NR)
        {
            int nr = (int)(n1 - n < STREAM_NR ? n1 - n : STREAM_NR);
            stream_tile_any((int)rows, nr, x, ldx, w + n * ldw, ldw, k, out);
            for (int64_t i = 0; i < rows; i++)
                for (int j = 0; j < nr; j++) store(out[i * nr + j], bias, n + j, y, ldy, y_f32, i);
        }
        return;
    }
    /*
     * Blocking (a matter of speed only; every element keeps its order):
     * - K blocks sized from this CPU's L1 (kblock_bf16): a 6-feature weight block stays in L1 while every row tile of
     *   the row block streams past it; lanes of unfinished elements wait in lanes[] between K blocks. Without it fc2
     *   (K = 8,192: 96 KiB per weight block) ran at half the rate of K = 2,048 at 128 rows.
     * - Row blocks whose activations of one K block stay in L2 (<= 512 KiB): 128 rows at K blocks of 2,048. Sizing
     *   them by the whole of K instead (32 rows for fc2, K = 8,192) made a 71-row prompt chunk re-read fc2's 32 MiB
     *   three times, 7-10% slower (2-core Zen 5, 2026-12-02).
     * - With 2-4 row tiles (5-16 rows: decode batches) the tiles of one weight block share the prefetch of the next
     *   block, a row each: the first tile of a block no longer waits for memory. Same 2-core Zen 5, 2026-12-03, the
     *   decoder's 2.68 GB on 2 threads, interleaved rounds: 16 rows 108.8 -> 104.5 ms and 116.3 -> 109.9 ms (two runs),
     *   8 rows 95.0 -> 82.9 ms; with 1 tile (4 rows) it was 2-5% slower and at 71 rows 2% slower, so those don't.
     */
    enum { MAXROWBLOCK = 128 };
    int64_t KBLOCK = kblock_bf16();
    int64_t rowBlock = (512 * 1024) / (2 * (k < KBLOCK ? (k > 0 ? k : 1) : KBLOCK));
    rowBlock = rowBlock < 4 ? 4 : rowBlock > MAXROWBLOCK ? MAXROWBLOCK : rowBlock - rowBlock % 4;
    float lanes[MAXROWBLOCK / 4][6 * 4 * 16];
    float out[24];
    for (int64_t m0 = 0; m0 < rows; m0 += rowBlock)
    {
        int64_t m1 = m0 + rowBlock < rows ? m0 + rowBlock : rows;
        for (int64_t n = n0; n < n1; n += 6)
        {
            int nr = (int)(n1 - n < 6 ? n1 - n : 6);
            for (int64_t kb = 0; kb < k || kb == 0; kb += KBLOCK)
            {
                int64_t kl = k - kb < KBLOCK ? k - kb : KBLOCK;
                int first = kb == 0, last = kb + KBLOCK >= k;
                const uint16_t* next = !last ? w + n * ldw + kb + KBLOCK : n + 6 < n1 ? w + (n + 6) * ldw : w;
                int tiles = (int)((m1 - m0 + 3) / 4);
                int nextRows = tiles < 2 || tiles > 4 ? 0 : !last ? nr : n + 6 < n1 ? (int)(n1 - n - 6 < 6 ? n1 - n - 6 : 6) : 0;
                for (int64_t m = m0; m < m1; m += 4)
                {
                    int mr = (int)(m1 - m < 4 ? m1 - m : 4);
                    int pf0, pf1;
                    prefetch_share((int)((m - m0) / 4), tiles, nextRows, &pf0, &pf1);
                    tile_any(mr, nr, x + m * ldx + kb, ldx, w + n * ldw + kb, ldw, kl, lanes[(m - m0) / 4], first, last, out, next, pf0, pf1);
                    if (!last) continue;
                    for (int i = 0; i < mr; i++)
                        for (int j = 0; j < nr; j++) store(out[i * nr + j], bias, n + j, y, ldy, y_f32, m + i);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- packed weights */

/*
 * Weights packed for vdpbf16ps, in place: each group of 16 output features [16g, 16g + 16) x K becomes K/2 vectors of
 * 16 dwords, dword f of vector p = (w[16g + f][2p] low, w[16g + f][2p + 1] high). One row's pair (x[2p], x[2p + 1])
 * broadcast against vector p adds both products into each feature's own lane: no fold per element, 16 features per
 * register. The bytes of a group stay where they were, so packing needs no second copy of the weights.
 * Order per element (all ISAs): acc = 0; for p in order: acc += x[2p+1] w[2p+1]; acc += x[2p] w[2p] (each rounded,
 * denormals flushed, as vdpbf16ps); then + bias, rounded to bf16 once. A row's bits depend on that row alone.
 * On a 2-core Zen 5 (2026-12-03, benchmarks/native/packed_layout_probe.c, the decoder's 2.68 GB on 2 threads) this ran
 * 1.09x the previous kernels at 1 row, 1.17x at 4, 1.40x at 8, 1.37-1.42x at 16 and 1.27x at 71 rows.
 */

/* Packs (unpack = 0) or restores (1) w [n, k] in place; n % 16 == 0 and k % 2 == 0. Returns 0, or -1 (shape, memory). */
int k2_pack_bf16(uint16_t* w, int64_t n, int64_t k, int unpack)
{
    if (n % 16 != 0 || k % 2 != 0 || k < 2) return -1;
    uint16_t* tmp = (uint16_t*)malloc(sizeof(uint16_t) * 16 * (size_t)k);
    if (!tmp) return -1;
    int64_t pairs = k / 2;
    for (int64_t g = 0; g < n / 16; g++)
    {
        uint16_t* group = w + g * 16 * k;
        memcpy(tmp, group, sizeof(uint16_t) * 16 * (size_t)k);
        for (int64_t p = 0; p < pairs; p++)
            for (int f = 0; f < 16; f++)
            {
                uint16_t* packed = group + (p * 16 + f) * 2;
                const uint16_t* packedSrc = tmp + (p * 16 + f) * 2;
                if (unpack)
                {
                    group[f * k + 2 * p] = packedSrc[0];
                    group[f * k + 2 * p + 1] = packedSrc[1];
                }
                else
                {
                    packed[0] = tmp[f * k + 2 * p];
                    packed[1] = tmp[f * k + 2 * p + 1];
                }
            }
    }
    free(tmp);
    return 0;
}

/*
 * Rows ids[0, count) of a weight [n, k] whose first packed_rows rows (whole groups) are packed by k2_pack_bf16 and the
 * rest stored, written as stored rows into out [count, k]: a tied embedding read from the packed lm_head weight.
 * Returns 0, or -1 for an id outside [0, n).
 */
int k2_packed_rows_bf16(const uint16_t* w, int64_t n, int64_t k, int64_t packed_rows, const int64_t* ids, int64_t count, uint16_t* out)
{
    for (int64_t i = 0; i < count; i++)
    {
        int64_t id = ids[i];
        uint16_t* row = out + i * k;
        if (id < 0 || id >= n) return -1;
        if (id >= packed_rows)
        {
            memcpy(row, w + id * k, sizeof(uint16_t) * (size_t)k);
            continue;
        }
        const uint16_t* lane = w + id / 16 * 16 * k + id % 16 * 2; /* pair p of feature f: group + (16p + f) * 2 */
        for (int64_t p = 0; p < k / 2; p++)
        {
            row[2 * p] = lane[p * 32];
            row[2 * p + 1] = lane[p * 32 + 1];
        }
    }
    return 0;
}

enum { PK_MR = 8, PK_NR = 3, PK_ROW_NR = 12 };

/*
 * MR rows x NR groups of 16 features (24 zmm accumulators at 8 x 3), the pairs of one group 64 bytes apart, over one
 * chunk of `pairs` pairs: the accumulators start at zero (first) or from out, and are left in out. Groups [pf0, pf1)
 * of the next block (pf) are prefetched to L2, one line per pair: with two or more row tiles per block (over 8 rows)
 * the first tile no longer waits for memory. 2-core Zen 5, 2026-12-03, the decoder's 2.68 GB on 2 threads,
 * interleaved: 16 rows 1.13-1.16x faster (80.1 -> 70.8 ms), 71 rows 1.13x, 10-12 rows a tie; one tile has no later
 * tile to hide the fetch behind, so it does not prefetch.
 */
K2_INLINE K2_TARGET void packed_tile_bf16(int MR, int NR, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t pairs, int64_t groupStride,
    float* out, int first, const uint16_t* pf, int pf0, int pf1)
{
    __m512 acc[PK_MR][PK_NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(out + (i * NR + j) * 16);
    for (int64_t p = 0; p < pairs; p++)
    {
        for (int j = pf0; j < pf1; j++) _mm_prefetch((const char*)(pf + j * groupStride + p * 32), _MM_HINT_T1);
        __m512bh wv[PK_NR];
        for (int j = 0; j < NR; j++) wv[j] = (__m512bh)_mm512_loadu_si512((const void*)(w + j * groupStride + p * 32));
        for (int i = 0; i < MR; i++)
        {
            int32_t pair;
            memcpy(&pair, x + i * ldx + 2 * p, sizeof pair);
            __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
            for (int j = 0; j < NR; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xb, wv[j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) _mm512_storeu_ps(out + (i * NR + j) * 16, acc[i][j]);
}

/* One row x 12 groups: nothing to reuse, so as many weight streams in flight as the registers allow. */
static K2_TARGET void packed_row_bf16(const uint16_t* x, const uint16_t* w, int64_t pairs, int64_t groupStride, float* out)
{
    __m512 acc[PK_ROW_NR];
    for (int j = 0; j < PK_ROW_NR; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; p++)
    {
        int32_t pair;
        memcpy(&pair, x + 2 * p, sizeof pair);
        __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
        for (int j = 0; j < PK_ROW_NR; j++)
            acc[j] = _mm512_dpbf16_ps(acc[j], xb, (__m512bh)_mm512_loadu_si512((const void*)(w + j * groupStride + p * 32)));
    }
    for (int j = 0; j < PK_ROW_NR; j++) _mm512_storeu_ps(out + j * 16, acc[j]);
}

#define PK_CASE(mr, nr) case (mr) * 4 + (nr): packed_tile_bf16(mr, nr, x, ldx, w, pairs, groupStride, out, first, pf, pf0, pf1); break;
#define PK_ROW(mr) PK_CASE(mr, 1) PK_CASE(mr, 2) PK_CASE(mr, 3)

static K2_TARGET void packed_tile_any(int mr, int nr, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t pairs, int64_t groupStride, float* out,
    int first, const uint16_t* pf, int pf0, int pf1)
{
    switch (mr * 4 + nr)
    {
        PK_ROW(1) PK_ROW(2) PK_ROW(3) PK_ROW(4) PK_ROW(5) PK_ROW(6) PK_ROW(7) PK_ROW(8)
        default: break;
    }
}

/* f32_to_bf16 on 16 lanes (nearest even on the bits, NaN kept quiet): the bf16 bits in the low half of each dword. */
K2_INLINE K2_TARGET __m512i bf16_bits16(__m512 v)
{
    __m512i bits = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
}

/*
 * 16 consecutive outputs of row m, features [n, n + 16): store() on a vector. The bias add is the same float add; the
 * rounding to bf16 is f32_to_bf16's on integer lanes (nearest even on the bits, NaN kept quiet), not vcvtneps2bf16,
 * which flushes denormals: so every ISA rounds alike. One store per element cost ~10 % of a 16-row step.
 */
K2_INLINE K2_TARGET void store16(__m512 v, const uint16_t* bias, int64_t n, void* y, int64_t ldy, int y_f32, int64_t m)
{
    if (bias)
        v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(bias + n))), 16)));
    if (y_f32)
    {
        _mm512_storeu_ps((float*)y + m * ldy + n, v);
        return;
    }
    _mm256_storeu_si256((__m256i*)((uint16_t*)y + m * ldy + n), _mm512_cvtepi32_epi16(bf16_bits16(v)));
}

/* One element in the packed order, scalar (the portable path, and the reference the others reproduce). */
static float packed_dot_scalar(const uint16_t* x, const uint16_t* group, int f, int64_t pairs)
{
    float acc = 0.0f;
    for (int64_t p = 0; p < pairs; p++)
    {
        const uint16_t* wp = group + (p * 16 + f) * 2;
        acc = daz(acc + daz(bf16_to_f32(x[2 * p + 1])) * daz(bf16_to_f32(wp[1])));
        acc = daz(acc + daz(bf16_to_f32(x[2 * p])) * daz(bf16_to_f32(wp[0])));
    }
    return acc;
}

/* AVX2 + FMA: 4 rows x one group (two 8-feature halves), odd then even product fused into each lane (exact products). */
static K2_TARGET_AVX2 void packed_tile_avx2(int mr, const uint16_t* x, int64_t ldx, const uint16_t* group, int64_t pairs, float* out)
{
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < pairs; p++)
    {
        __m256 wo[2], we[2];
        for (int h = 0; h < 2; h++)
        {
            __m256i v = _mm256_loadu_si256((const __m256i*)(group + p * 32 + h * 16));
            wo[h] = _mm256_castsi256_ps(_mm256_and_si256(v, high));
            we[h] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        }
        for (int i = 0; i < mr; i++)
        {
            __m256 xo = _mm256_set1_ps(bf16_to_f32(x[i * ldx + 2 * p + 1]));
            __m256 xe = _mm256_set1_ps(bf16_to_f32(x[i * ldx + 2 * p]));
            for (int h = 0; h < 2; h++)
            {
                acc[i][h] = _mm256_fmadd_ps(xo, wo[h], acc[i][h]);
                acc[i][h] = _mm256_fmadd_ps(xe, we[h], acc[i][h]);
            }
        }
    }
    for (int i = 0; i < mr; i++)
        for (int h = 0; h < 2; h++) _mm256_storeu_ps(out + i * 16 + h * 8, acc[i][h]);
}

/*
 * Blocks of the AVX-512 path: PK_NR groups x at most PK_KC pairs (196 KB at 3 x 1,024), run by every row tile of up to
 * PK_TILES tiles before the next, so a block's later tiles read it from L2 and the prefetch of the next block fits
 * beside it. A whole K = 8,192 block (786 KB, fc2) twice over did not fit Zen 5's 1 MB L2: 16 rows of fc2 ran 478
 * GFLOP/s against 747 for the q/k/v product's K = 2,048. 2-core Zen 5, 2026-12-03, 16 rows, 2 threads: fc2 0.80 ms
 * against 0.92 unchunked (256 / 512 / 1,024 / 4,096 pairs: 0.87 / 0.85 / 0.80 / 0.92 ms), a 16-row decode step
 * 84-85 ms against 90-94 in alternating runs. The accumulators of each tile wait in `partial` between chunks, exact
 * float32, so the chain over the pairs is the same whatever the chunking.
 */
enum { PK_KC = 1024, PK_TILES = 16 };

/* The AVX-512 BF16 path of k2_linear_packed_bf16. */
static K2_TARGET void linear_packed_avx512(const uint16_t* x, int64_t rows, int64_t ldx, const uint16_t* w, int64_t k, const uint16_t* bias,
    void* y, int64_t ldy, int y_f32, int64_t g0, int64_t g1)
{
    int64_t pairs = k / 2, groupStride = 16 * k;
    float out[PK_ROW_NR * 16];
    int64_t g = g0;
    if (rows == 1)
        for (; g + PK_ROW_NR <= g1; g += PK_ROW_NR)
        {
            packed_row_bf16(x, w + g * groupStride, pairs, groupStride, out);
            for (int j = 0; j < PK_ROW_NR; j++) store16(_mm512_loadu_ps(out + j * 16), bias, (g + j) * 16, y, ldy, y_f32, 0);
        }
    int64_t chunks = (pairs + PK_KC - 1) / PK_KC, chunk = (pairs + chunks - 1) / chunks;
    float partial[PK_TILES][PK_MR * PK_NR * 16];
    for (int64_t m0 = 0; m0 < rows; m0 += PK_TILES * PK_MR)
    {
        int64_t m1 = rows - m0 < PK_TILES * PK_MR ? rows : m0 + PK_TILES * PK_MR;
        int tiles = (int)((m1 - m0 + PK_MR - 1) / PK_MR);
        for (int64_t gb = g; gb < g1; gb += PK_NR)
        {
            int nr = (int)(g1 - gb < PK_NR ? g1 - gb : PK_NR);
            for (int64_t c0 = 0; c0 < pairs; c0 += chunk)
            {
                int64_t c1 = pairs - c0 < chunk ? pairs : c0 + chunk;
                /* The next block: this block's next chunk, or the next groups' first. */
                const uint16_t* next = c1 < pairs ? w + gb * groupStride + c1 * 32 : w + (gb + PK_NR) * groupStride;
                int nextGroups = c1 < pairs ? nr : gb + PK_NR < g1 ? (int)(g1 - gb - PK_NR < PK_NR ? g1 - gb - PK_NR : PK_NR) : 0;
                if (tiles < 2) nextGroups = 0;
                for (int64_t m = m0; m < m1; m += PK_MR)
                {
                    int mr = (int)(m1 - m < PK_MR ? m1 - m : PK_MR), tile = (int)((m - m0) / PK_MR);
                    int pf0, pf1;
                    prefetch_share(tile, tiles, nextGroups, &pf0, &pf1);
                    packed_tile_any(mr, nr, x + m * ldx + 2 * c0, ldx, w + gb * groupStride + c0 * 32, c1 - c0, groupStride, partial[tile],
                        c0 == 0, next, pf0, pf1);
                    if (c1 < pairs) continue;
                    for (int i = 0; i < mr; i++)
                        for (int j = 0; j < nr; j++) store16(_mm512_loadu_ps(partial[tile] + (i * nr + j) * 16), bias, (gb + j) * 16, y, ldy, y_f32, m + i);
                }
            }
        }
    }
}

/*
 * y[m, n] = sum_k x[m, k] w[n, k] (+ bias[n]) for rows m < rows and features n in groups [g0, g1) (n = 16g + f), w
 * packed by k2_pack_bf16 ([N, k] as stored before, N % 16 == 0, k % 2 == 0). Same output conventions as k2_linear_bf16.
 */
void k2_linear_packed_bf16(const uint16_t* x, int64_t rows, int64_t ldx, const uint16_t* w, int64_t k, const uint16_t* bias,
    void* y, int64_t ldy, int y_f32, int64_t g0, int64_t g1, int isa)
{
    if (isa == K2_ISA_AVX512BF16)
    {
        linear_packed_avx512(x, rows, ldx, w, k, bias, y, ldy, y_f32, g0, g1);
        return;
    }
    int64_t pairs = k / 2, groupStride = 16 * k;
    float out[4 * 16]; /* one AVX2 tile: 4 rows x 16 features */
    if (isa == K2_ISA_AVX2)
    {
        unsigned int csr = _mm_getcsr();
        _mm_setcsr(csr | 0x8040u); /* DAZ | FTZ, as vdpbf16ps */
        for (int64_t g = g0; g < g1; g++)
            for (int64_t m = 0; m < rows; m += 4)
            {
                int mr = (int)(rows - m < 4 ? rows - m : 4);
                packed_tile_avx2(mr, x + m * ldx, ldx, w + g * groupStride, pairs, out);
                for (int i = 0; i < mr; i++)
                    for (int n = 0; n < 16; n++) store(out[i * 16 + n], bias, g * 16 + n, y, ldy, y_f32, m + i);
            }
        _mm_setcsr(csr);
        return;
    }
    for (int64_t g = g0; g < g1; g++)
        for (int f = 0; f < 16; f++)
            for (int64_t m = 0; m < rows; m++) store(packed_dot_scalar(x + m * ldx, w + g * groupStride, f, pairs), bias, g * 16 + f, y, ldy, y_f32, m);
}

/* ---------------------------------------------------------------- row work: LayerNorm, residual add */

/*
 * One bf16 row of n values normed in float32: mean, then the biased variance of (x - mean), each summed in 16 float
 * lanes (value i into lane i % 16, in i order) folded as fold16; y = (x - mean) * rstd * gamma + beta, rounded to
 * nearest even once. The lanes are independent accumulators, so a compiler's vectors of any width keep this order:
 * every ISA below gives the same bits, and a row's result never depends on the other rows.
 */
K2_INLINE void layer_norm_row(const uint16_t* x, int64_t n, const uint16_t* gamma, const uint16_t* beta, float eps, uint16_t* y)
{
    float lane[16] = {0};
    int64_t full = n / 16 * 16;
    for (int64_t c = 0; c < full; c += 16)
        for (int j = 0; j < 16; j++) lane[j] += bf16_to_f32(x[c + j]);
    for (int64_t i = full; i < n; i++) lane[i - full] += bf16_to_f32(x[i]);
    float mean = fold16(lane) / (float)n;
    for (int j = 0; j < 16; j++) lane[j] = 0.0f;
    for (int64_t c = 0; c < full; c += 16)
        for (int j = 0; j < 16; j++)
        {
            float d = bf16_to_f32(x[c + j]) - mean;
            lane[j] += d * d;
        }
    for (int64_t i = full; i < n; i++)
    {
        float d = bf16_to_f32(x[i]) - mean;
        lane[i - full] += d * d;
    }
    float rstd = 1.0f / sqrtf(fold16(lane) / (float)n + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = f32_to_bf16((bf16_to_f32(x[i]) - mean) * rstd * bf16_to_f32(gamma[i]) + bf16_to_f32(beta[i]));
}

K2_INLINE void add_row(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

static void layer_norm_portable(const uint16_t* x, int64_t rows, int64_t n, int64_t ldx, const uint16_t* gamma, const uint16_t* beta,
    float eps, uint16_t* y, int64_t ldy)
{
    for (int64_t m = 0; m < rows; m++) layer_norm_row(x + m * ldx, n, gamma, beta, eps, y + m * ldy);
}

static K2_TARGET_AVX2 void layer_norm_avx2(const uint16_t* x, int64_t rows, int64_t n, int64_t ldx, const uint16_t* gamma, const uint16_t* beta,
    float eps, uint16_t* y, int64_t ldy)
{
    for (int64_t m = 0; m < rows; m++) layer_norm_row(x + m * ldx, n, gamma, beta, eps, y + m * ldy);
}

static K2_TARGET void layer_norm_avx512(const uint16_t* x, int64_t rows, int64_t n, int64_t ldx, const uint16_t* gamma, const uint16_t* beta,
    float eps, uint16_t* y, int64_t ldy)
{
    for (int64_t m = 0; m < rows; m++) layer_norm_row(x + m * ldx, n, gamma, beta, eps, y + m * ldy);
}

/* LayerNorm over the last n values of each of `rows` bf16 rows (strides ldx, ldy; y may be x). */
void k2_layer_norm_bf16(const uint16_t* x, int64_t rows, int64_t n, int64_t ldx, const uint16_t* gamma, const uint16_t* beta,
    float eps, uint16_t* y, int64_t ldy, int isa)
{
    if (isa == K2_ISA_AVX512BF16) layer_norm_avx512(x, rows, n, ldx, gamma, beta, eps, y, ldy);
    else if (isa == K2_ISA_AVX2) layer_norm_avx2(x, rows, n, ldx, gamma, beta, eps, y, ldy);
    else layer_norm_portable(x, rows, n, ldx, gamma, beta, eps, y, ldy);
}

static K2_TARGET_AVX2 void add_avx2(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n) { add_row(a, b, y, n); }

static K2_TARGET void add_avx512(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n) { add_row(a, b, y, n); }

/* y[i] = a[i] + b[i] in float32, rounded to bf16 (nearest even): torch's bf16 add. y may be a or b. */
void k2_add_bf16(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n, int isa)
{
    if (isa == K2_ISA_AVX512BF16) add_avx512(a, b, y, n);
    else if (isa == K2_ISA_AVX2) add_avx2(a, b, y, n);
    else add_row(a, b, y, n);
}

/* ---------------------------------------------------------------- attention */

/*
 * acc[d] = sum_j p[j] v[j, d] in j order, one fused multiply-add per key (as the portable fmaf). hd % 16 == 0.
 * Four 16-dimension blocks advance together over the keys: each fmadd waits for its accumulator's last one, so with one
 * block at a time a 64-wide head ran at one multiply-add per latency (4 cycles); every element keeps its order.
 */
static K2_TARGET void weighted_sum_avx512(const float* p, const uint16_t* values, int64_t hd, int64_t len, float* acc, const uint16_t* next)
{
    int64_t d = 0;
    for (; d + 64 <= hd; d += 64)
    {
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int64_t j = 0; j < len; j++)
        {
            if (next && d == 0)
                for (int64_t b = 0; b < hd * 2; b += 64) _mm_prefetch((const char*)(next + j * hd) + b, _MM_HINT_T0);
            __m512 pj = _mm512_set1_ps(p[j]);
            for (int b = 0; b < 4; b++)
            {
                __m512i v = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(values + j * hd + d + 16 * b))), 16);
                a[b] = _mm512_fmadd_ps(pj, _mm512_castsi512_ps(v), a[b]);
            }
        }
        for (int b = 0; b < 4; b++) _mm512_storeu_ps(acc + d + 16 * b, a[b]);
    }
    for (; d < hd; d += 16)
    {
        __m512 a = _mm512_setzero_ps();
        for (int64_t j = 0; j < len; j++)
        {
            __m512i v = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(values + j * hd + d))), 16);
            a = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_castsi512_ps(v), a);
        }
        _mm512_storeu_ps(acc + d, a);
    }
}

/* The same weighted sum on AVX2 + FMA, four 8-dimension blocks at a time. hd % 8 == 0. */
static K2_TARGET_AVX2 void weighted_sum_avx2(const float* p, const uint16_t* values, int64_t hd, int64_t len, float* acc)
{
    int64_t d = 0;
    for (; d + 32 <= hd; d += 32)
    {
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t j = 0; j < len; j++)
        {
            __m256 pj = _mm256_set1_ps(p[j]);
            for (int b = 0; b < 4; b++)
            {
                __m256i v = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(values + j * hd + d + 8 * b))), 16);
                a[b] = _mm256_fmadd_ps(pj, _mm256_castsi256_ps(v), a[b]);
            }
        }
        for (int b = 0; b < 4; b++) _mm256_storeu_ps(acc + d + 8 * b, a[b]);
    }
    for (; d < hd; d += 8)
    {
        __m256 a = _mm256_setzero_ps();
        for (int64_t j = 0; j < len; j++)
        {
            __m256i v = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(values + j * hd + d))), 16);
            a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_castsi256_ps(v), a);
        }
        _mm256_storeu_ps(acc + d, a);
    }
}

/*
 * Scores of one query against keys [0, len) (k2_linear_bf16's order per score), 16 keys at a time: the 16 accumulators'
 * lane folds (hsum16's pairings: l[i] + l[i+8], + l[i+4], + l[i+2], l0 + l1) run on all 16 at once through shuffles,
 * 4 shuffle-and-add levels instead of a separate fold per key, which cost more than the key's two multiplies at a
 * 64-wide head. Keys past the last 16 go through k2_linear_bf16.
 */
static K2_TARGET void scores_avx512(const uint16_t* q, const uint16_t* keys, int64_t hd, int64_t len, float* scores, const uint16_t* next)
{
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t j = 0;
    for (; j + 16 <= len; j += 16)
    {
        __m512 acc[16];
        for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
        if (next)
            for (int64_t b = 0; b < 16 * hd * 2; b += 64) _mm_prefetch((const char*)(next + j * hd) + b, _MM_HINT_T0);
        int64_t c = 0;
        for (; c + 32 <= hd; c += 32)
        {
            __m512bh qv = (__m512bh)_mm512_loadu_si512((const void*)(q + c));
            for (int t = 0; t < 16; t++)
                acc[t] = _mm512_dpbf16_ps(acc[t], qv, (__m512bh)_mm512_loadu_si512((const void*)(keys + (j + t) * hd + c)));
        }
        if (c < hd)
        {
            __mmask32 m = (__mmask32)((1ull << (hd - c)) - 1);
            __m512bh qv = (__m512bh)_mm512_maskz_loadu_epi16(m, q + c);
            for (int t = 0; t < 16; t++)
                acc[t] = _mm512_dpbf16_ps(acc[t], qv, (__m512bh)_mm512_maskz_loadu_epi16(m, keys + (j + t) * hd + c));
        }
        /* level 1: T[m] lanes 0-7 = key 2m's l[i] + l[i+8], lanes 8-15 = key 2m+1's */
        __m512 t1[8];
        for (int m = 0; m < 8; m++)
            t1[m] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * m], acc[2 * m + 1], 0x44), _mm512_shuffle_f32x4(acc[2 * m], acc[2 * m + 1], 0xEE));
        /* level 2: U[r] quarter k = key 4r + k's (l[i] + l[i+8]) + (l[i+4] + l[i+12]), i < 4 */
        __m512 t2[4];
        for (int r = 0; r < 4; r++)
            t2[r] = _mm512_add_ps(_mm512_shuffle_f32x4(t1[2 * r], t1[2 * r + 1], 0x88), _mm512_shuffle_f32x4(t1[2 * r], t1[2 * r + 1], 0xDD));
        /* level 3: V[s] quarter k = [c0, c1 of key 8s + k, c0, c1 of key 8s + 4 + k] */
        __m512 t3[2];
        for (int v = 0; v < 2; v++)
            t3[v] = _mm512_add_ps(_mm512_shuffle_ps(t2[2 * v], t2[2 * v + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                _mm512_shuffle_ps(t2[2 * v], t2[2 * v + 1], _MM_SHUFFLE(3, 2, 3, 2)));
        /* level 4: lane 4k + u = key 4u + k's c0 + c1; then keys in order */
        __m512 w = _mm512_add_ps(_mm512_shuffle_ps(t3[0], t3[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(t3[0], t3[1], _MM_SHUFFLE(3, 1, 3, 1)));
        _mm512_storeu_ps(scores + j, _mm512_permutexvar_ps(order, w));
    }
    if (next)
        for (int64_t b = j * hd * 2; b < len * hd * 2; b += 64) _mm_prefetch((const char*)next + b, _MM_HINT_T0);
    if (j < len) k2_linear_bf16(q, 1, hd, keys, hd, hd, NULL, scores, len, 1, j, len, K2_ISA_AVX512BF16);
}

/*
 * exp(x) for the softmax (x <= 0 there), the same operations on every ISA so every ISA gets the same bits: Cephes'
 * expf (x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial in r, about 1 ulp) in fused multiply-adds (fmaf here,
 * vfmadd in exp16). Under -87.33 (2^-126) it is 0, NaN stays NaN. libm's expf was a tenth of an attention call's time,
 * one key at a time.
 */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI -0.693359375f
#define EXP_LN2_LO 2.12194440e-4f
#define EXP_MIN -87.33f
static const float ExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

static float exp_scalar(float x)
{
    if (x != x) return x;
    if (x < EXP_MIN) return 0.0f;
    float n = rintf(x * EXP_LOG2E);
    float r = fmaf(n, EXP_LN2_LO, fmaf(n, EXP_LN2_HI, x));
    float p = ExpPoly[0];
    for (int i = 1; i < 6; i++) p = fmaf(p, r, ExpPoly[i]);
    float e = fmaf(p, r * r, r) + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

K2_INLINE K2_TARGET __m512 exp16(__m512 x)
{
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), _mm512_fmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x));
    __m512 p = _mm512_set1_ps(ExpPoly[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ExpPoly[i]));
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(e, _mm512_castsi512_ps(bits));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_MIN), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/*
 * Softmax weights of one head, in place: s[j] = exp(s[j] * scale - max) for j < len (max over the scaled scores);
 * returns their sum, taken in 16 lanes (lane l: keys j = l mod 16, in order) folded as fold16 / hsum16, so AVX-512
 * does 16 keys at a time and every ISA gets the same bits. A key-order sum was one dependent add per key.
 */
static float softmax_weights_scalar(float* s, int64_t len, float scale)
{
    float max = -INFINITY, lane[16] = {0};
    for (int64_t j = 0; j < len; j++)
    {
        s[j] *= scale;
        max = s[j] > max ? s[j] : max;
    }
    for (int64_t j = 0; j < len; j++)
    {
        s[j] = exp_scalar(s[j] - max);
        lane[j % 16] += s[j];
    }
    return fold16(lane);
}

static K2_TARGET float softmax_weights_avx512(float* s, int64_t len, float scale)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps(), vscale = _mm512_set1_ps(scale);
    for (int64_t j = 0; j < len; j += 16)
    {
        __mmask16 m = len - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - j)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), vscale);
        _mm512_mask_storeu_ps(s + j, m, v);
        vmax = _mm512_mask_max_ps(vmax, m, v, vmax); /* a NaN score is passed over, as the scalar compare does */
    }
    __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    for (int64_t j = 0; j < len; j += 16)
    {
        __mmask16 m = len - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - j)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), max));
        _mm512_mask_storeu_ps(s + j, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    return hsum16(sum);
}

static float softmax_weights(float* s, int64_t len, float scale, int isa)
{
    return isa == K2_ISA_AVX512BF16 ? softmax_weights_avx512(s, len, scale) : softmax_weights_scalar(s, len, scale);
}

/*
 * One query token, heads [h0, h1): out[h] = softmax(scale * q[h] . K[h, j]) V[h, j] over its own keys j < len.
 * q, out: [H, hd] bf16; keys/values: [H, *, hd] bf16 with head stride headStride, key stride hd. Scores use the
 * product's reduction order; the softmax weights and their sum come from softmax_weights_* (16 lanes); the weighted
 * sum of values runs in float32 in key order (one fmaf per key). On AVX-512 the next head's keys and values
 * (nextKeys, nextValues, or NULL) are prefetched to L1 a line or two per key while this head's are used: a head is
 * only len x 128 bytes per stream, too short for the hardware prefetcher to reach memory speed. 2-core Zen 5,
 * 2026-12-03, 16 tokens x 71 keys x 24 layers of cache from memory: 10.5-11.0 ms against 14.2-14.7 without (a burst
 * of the whole next head at once gained only ~7 %).
 */
static void attention_head(const uint16_t* q, const uint16_t* keys, const uint16_t* values, int64_t hd, int64_t len,
    float scale, uint16_t* out, float* scores, int isa, const uint16_t* nextKeys, const uint16_t* nextValues)
{
    if (isa == K2_ISA_AVX512BF16) scores_avx512(q, keys, hd, len, scores, nextKeys);
    else k2_linear_bf16(q, 1, hd, keys, hd, hd, NULL, scores, len, 1, 0, len, isa);
    float sum = softmax_weights(scores, len, scale, isa);
    float acc[256];
    if (isa == K2_ISA_AVX512BF16 && hd % 16 == 0)
    {
        weighted_sum_avx512(scores, values, hd, len, acc, nextValues);
    }
    else if (isa == K2_ISA_AVX2 && hd % 8 == 0)
    {
        weighted_sum_avx2(scores, values, hd, len, acc);
    }
    else
    {
        for (int64_t d = 0; d < hd; d++) acc[d] = 0.0f;
        for (int64_t j = 0; j < len; j++)
        {
            const uint16_t* v = values + j * hd;
            for (int64_t d = 0; d < hd; d++) acc[d] = fmaf(scores[j], bf16_to_f32(v[d]), acc[d]);
        }
    }
    for (int64_t d = 0; d < hd; d++) out[d] = f32_to_bf16(acc[d] / sum);
}

/* Returns 0, or -1 when hd is over 256 or memory for the scores is short. */
int k2_attention_bf16(const uint16_t* q, const uint16_t* keys, const uint16_t* values, int64_t headStride, int64_t hd,
    int64_t len, float scale, uint16_t* out, int64_t h0, int64_t h1, int isa)
{
    if (hd > 256 || len < 1) return -1;
    float* scores = (float*)malloc(sizeof(float) * (size_t)len);
    if (!scores) return -1;
    for (int64_t h = h0; h < h1; h++)
    {
        attention_head(q + h * hd, keys + h * headStride, values + h * headStride, hd, len, scale, out + h * hd, scores, isa,
            h + 1 < h1 ? keys + (h + 1) * headStride : NULL, h + 1 < h1 ? values + (h + 1) * headStride : NULL);
    }
    free(scores);
    return 0;
}

/* ---------------------------------------------------------------- CLIP's quick_gelu */

/* Rounds a float to the nearest bf16 and back (f32_to_bf16's rounding). */
static inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

/*
 * exp for the sigmoid's exp(-t), any x: exp_scalar up to 88.376 (2^127.5), where its scale factor 2^n would overflow;
 * past it 2 exp(x - ln 2) (ln 2 rounded to float: a few 1e-6 relative, far below a bf16 step), and +inf past
 * ln(FLT_MAX). 1 / (1 + exp) then still reaches the float denormals libtorch's sigmoid gives.
 */
#define EXP_SCALE_MAX 88.3762626647949f
#define EXP_FLT_MAX 88.72283935546875f
#define LN2_F 0.693147182f
static float exp_any_scalar(float x)
{
    if (x > EXP_FLT_MAX) return INFINITY;
    return x > EXP_SCALE_MAX ? exp_scalar(x - LN2_F) * 2.0f : exp_scalar(x);
}

/*
 * y = x * sigmoid(1.702 x) with libtorch's roundings on a bf16 tensor (x * 1.702f, sigmoid and the product each
 * rounded to bf16), sigmoid as 1 / (1 + exp(-t)) with the kernels' own exp: the same bits on every ISA; against
 * libtorch's (Sleef exp) at most one bf16 step apart.
 */
static inline uint16_t quick_gelu_one(uint16_t xb)
{
    if ((xb & 0x7fffu) > 0x7f80u) return (uint16_t)(xb | 0x40u); /* NaN in, the same NaN out (quiet), as on every ISA */
    float x = bf16_to_f32(xb);
    float t = round_bf16(x * 1.702f);
    float s = round_bf16(1.0f / (1.0f + exp_any_scalar(-t)));
    return f32_to_bf16(x * s);
}

/* exp_any_scalar on 16 lanes, the same bits. */
K2_INLINE K2_TARGET __m512 exp_any16(__m512 x)
{
    __m512 e = exp16(x);
    __mmask16 large = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_SCALE_MAX), _CMP_GT_OQ);
    if (large)
    {
        e = _mm512_mask_mov_ps(e, large, _mm512_mul_ps(exp16(_mm512_sub_ps(x, _mm512_set1_ps(LN2_F))), _mm512_set1_ps(2.0f)));
        e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_FLT_MAX), _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
    }
    return e;
}

/* Rounds 16 floats to bf16 and back (round_bf16 on 16 lanes). */
K2_INLINE K2_TARGET __m512 round_bf16_16(__m512 v) { return _mm512_castsi512_ps(_mm512_slli_epi32(bf16_bits16(v), 16)); }

static K2_TARGET void quick_gelu_avx512(const uint16_t* x, uint16_t* y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
    {
        __m512i xb = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(x + i)));
        __m512 v = _mm512_castsi512_ps(_mm512_slli_epi32(xb, 16));
        __m512 t = round_bf16_16(_mm512_mul_ps(v, _mm512_set1_ps(1.702f)));
        __m512 e = exp_any16(_mm512_sub_ps(_mm512_setzero_ps(), t));
        __m512 sigmoid = round_bf16_16(_mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
        __m512i result = bf16_bits16(_mm512_mul_ps(v, sigmoid));
        result = _mm512_mask_mov_epi32(result, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_or_si512(xb, _mm512_set1_epi32(0x40)));
        _mm256_storeu_si256((__m256i*)(y + i), _mm512_cvtepi32_epi16(result));
    }
    for (; i < n; i++) y[i] = quick_gelu_one(x[i]);
}

/* y[i] = quick_gelu(x[i]) for i < n (y may be x). */
void k2_quick_gelu_bf16(const uint16_t* x, uint16_t* y, int64_t n, int isa)
{
    if (isa == K2_ISA_AVX512BF16)
    {
        quick_gelu_avx512(x, y, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] = quick_gelu_one(x[i]);
}

/* ---------------------------------------------------------------- encoder attention: every query sees every key */

/* y[j] = bf16(s[j] / divisor) for j < n (f32_to_bf16's rounding; 16 at a time on AVX-512, the same bits). */
static K2_TARGET void divide_round_avx512(const float* s, int64_t n, float divisor, uint16_t* y)
{
    __m512 vd = _mm512_set1_ps(divisor);
    for (int64_t j = 0; j < n; j += 16)
    {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        _mm256_mask_storeu_epi16(y + j, m, _mm512_cvtepi32_epi16(bf16_bits16(_mm512_div_ps(_mm512_maskz_loadu_ps(m, s + j), vd))));
    }
}

static void divide_round(const float* s, int64_t n, float divisor, uint16_t* y, int isa)
{
    if (isa == K2_ISA_AVX512BF16)
    {
        divide_round_avx512(s, n, divisor, y);
        return;
    }
    for (int64_t j = 0; j < n; j++) y[j] = f32_to_bf16(s[j] / divisor);
}

/*
 * y [rows, n] (float32, stride ldy) = x · w^T for a weight w [n, k] (k even) stored as rows in scratch memory: its whole
 * groups of 16 rows are packed in place first and run on the packed product, the last n % 16 rows on the stored-layout
 * one (as Bf16Kernels.LinearPacked does with a packed weight's tail). Returns 0, or -1 when packing finds no memory.
 */
static int pack_and_multiply(const uint16_t* x, int64_t rows, int64_t ldx, uint16_t* w, int64_t n, int64_t k, float* y, int64_t ldy, int isa)
{
    int64_t groups = n / 16;
    if (groups > 0)
    {
        if (k2_pack_bf16(w, groups * 16, k, 0) != 0) return -1;
        k2_linear_packed_bf16(x, rows, ldx, w, k, NULL, y, ldy, 1, 0, groups, isa);
    }
    if (groups * 16 < n) k2_linear_bf16(x, rows, ldx, w, k, k, NULL, y, ldy, 1, groups * 16, n, isa);
    return 0;
}

/*
 * Unmasked attention of one image's `queries` query rows over its `len` key rows, heads [h0, h1): q row i at
 * q + i * ldq, key and value row j at k + j * ldkv and v + j * ldkv, output row i at out + i * ldo, head h at column
 * h * hd of each. Per head, as matrix products (the decode attention's one query at a time ran 45 ms of a 300 ms
 * ViT-L encode on the 2-core Zen 5):
 * - scores = q K^T by the packed product, the head's keys packed as a weight [len, hd] (the last len % 16 stored);
 * - per query, softmax_weights_* (float32, the decode attention's), the weights exp(s - max) rounded to bf16
 *   unnormalised, as libtorch's CPU flash attention does;
 * - weights V by the packed product over V^T [hd, len (+1 zero to make it even)], the last hd % 16 features stored,
 *   into float32, divided by the query's sum and rounded once.
 * Every ISA gives the same bits (the products' and the softmax's orders are fixed); a query's output depends on its
 * image alone. Returns 0, or -1 when hd is odd or memory is short.
 */
int k2_encoder_attention_bf16(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ldkv,
    int64_t queries, int64_t len, int64_t hd, float scale, uint16_t* out, int64_t ldo, int64_t h0, int64_t h1, int isa)
{
    if (hd < 2 || hd % 2 != 0 || len < 1 || queries < 1) return -1;
    int64_t len2 = len + (len & 1);
    uint16_t* keys = (uint16_t*)malloc(sizeof(uint16_t) * (size_t)(len * hd));
    uint16_t* valuesT = (uint16_t*)malloc(sizeof(uint16_t) * (size_t)(hd * len2));
    float* scores = (float*)malloc(sizeof(float) * (size_t)(queries * len));
    uint16_t* weights = (uint16_t*)malloc(sizeof(uint16_t) * (size_t)(queries * len2));
    float* acc = (float*)malloc(sizeof(float) * (size_t)(queries * hd));
    float* sums = (float*)malloc(sizeof(float) * (size_t)queries);
    int rc = keys && valuesT && scores && weights && acc && sums ? 0 : -1;
    for (int64_t h = h0; h < h1 && rc == 0; h++)
    {
        for (int64_t j = 0; j < len; j++) memcpy(keys + j * hd, k + j * ldkv + h * hd, sizeof(uint16_t) * (size_t)hd);
        for (int64_t j = 0; j < len; j++)
        {
            const uint16_t* row = v + j * ldkv + h * hd;
            for (int64_t d = 0; d < hd; d++) valuesT[d * len2 + j] = row[d];
        }
        if (len2 > len)
            for (int64_t d = 0; d < hd; d++) valuesT[d * len2 + len] = 0;
        if (pack_and_multiply(q + h * hd, queries, ldq, keys, len, hd, scores, len, isa) != 0)
        {
            rc = -1;
            break;
        }
        for (int64_t i = 0; i < queries; i++)
        {
            float* s = scores + i * len;
            sums[i] = softmax_weights(s, len, scale, isa);
            divide_round(s, len, 1.0f, weights + i * len2, isa);
            if (len2 > len) weights[i * len2 + len] = 0;
        }
        if (pack_and_multiply(weights, queries, len2, valuesT, hd, len2, acc, hd, isa) != 0)
        {
            rc = -1;
            break;
        }
        for (int64_t i = 0; i < queries; i++) divide_round(acc + i * hd, hd, sums[i], out + i * ldo + h * hd, isa);
    }
    free(keys);
    free(valuesT);
    free(scores);
    free(weights);
    free(acc);
    free(sums);
    return rc;
}
