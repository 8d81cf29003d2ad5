/*
 * Probe: the decoder's bf16 products with the weights packed for vdpbf16ps (pairs of k interleaved across 16 output
 * features, activations broadcast) against the kernels as they are (weights as stored, 4 x 6 tiles of 16 k-lanes
 * folded per element), side by side on the decoder's 2.68 GB of weight shapes, 2 threads, interleaved rounds.
 *
 *   gcc -O3 -ffp-contract=off -pthread -I libs/Kosmos2.Kernels/native -o /tmp/packed_probe \
 *       benchmarks/native/packed_layout_probe.c -lm && /tmp/packed_probe ROWS [ROUNDS]
 *
 * Needs AVX512-BF16 (exits otherwise). The packed order per element is one chain over k pairs (odd k then even k of
 * each pair, one rounding each, as vdpbf16ps), a fixed order like the current one but a different one, so its bits
 * differ from today's kernels; it prints the largest difference from a float64 reference and checks that a row has
 * the same bits alone and among the others. Last lines: `name: value unit`.
 */
#include "k2kernels.c"
#include <pthread.h>
#include <stdio.h>
#include <time.h>

enum { MR = 8, NR = 3, PIECES = 8 }; /* 8 rows x 3 blocks of 16 features: 24 zmm accumulators */

typedef struct { int64_t n, k; uint16_t* w; uint32_t* packed; } Matrix;

static Matrix mats[128];
static int count, rows;
static uint16_t* x;
static float* y_packed;
static uint16_t* y_current;
static int mode, current;
static volatile int next_piece;
static pthread_barrier_t barrier;

/* [ceil(n/16)][k/2][16] uint32: element (f, p) holds w[f][2p] in the low half and w[f][2p+1] in the high half. */
static uint32_t* pack(const uint16_t* w, int64_t n, int64_t k)
{
    int64_t blocks = (n + 15) / 16, pairs = k / 2;
    uint32_t* packed = aligned_alloc(64, (size_t)(blocks * pairs * 16 * 4));
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t p = 0; p < pairs; p++)
            for (int f = 0; f < 16; f++)
            {
                int64_t row = b * 16 + f;
                uint32_t lo = row < n ? w[row * k + 2 * p] : 0, hi = row < n ? w[row * k + 2 * p + 1] : 0;
                packed[(b * pairs + p) * 16 + f] = lo | (hi << 16);
            }
    return packed;
}

static K2_TARGET void packed_tile(int mr, int nr, const uint16_t* xs, int64_t ldx, const uint32_t* w, int64_t pairs, int64_t blockStride,
    float* y, int64_t ldy)
{
    __m512 acc[MR][NR];
    for (int m = 0; m < MR; m++)
        for (int j = 0; j < NR; j++) acc[m][j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; p++)
    {
        __m512bh wv[NR];
        for (int j = 0; j < nr; j++) wv[j] = (__m512bh)_mm512_loadu_si512((const void*)(w + j * blockStride + p * 16));
        for (int m = 0; m < mr; m++)
        {
            int32_t pair;
            memcpy(&pair, xs + m * ldx + 2 * p, sizeof pair);
            __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
            for (int j = 0; j < nr; j++) acc[m][j] = _mm512_dpbf16_ps(acc[m][j], xb, wv[j]);
        }
    }
    for (int m = 0; m < mr; m++)
        for (int j = 0; j < nr; j++) _mm512_storeu_ps(y + m * ldy + 16 * j, acc[m][j]);
}

/* The full tile (mr = MR, nr = NR) as its own instance, so its loops unroll with constant bounds. */
static K2_TARGET void packed_tile_full(const uint16_t* xs, int64_t ldx, const uint32_t* w, int64_t pairs, int64_t blockStride, float* y, int64_t ldy)
{
    packed_tile(MR, NR, xs, ldx, w, pairs, blockStride, y, ldy);
}

static K2_TARGET void packed_row12(const uint16_t* xs, const uint32_t* w, int64_t pairs, int64_t blockStride, float* y)
{
    __m512 acc[12];
    for (int j = 0; j < 12; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; p++)
    {
        int32_t pair;
        memcpy(&pair, xs + 2 * p, sizeof pair);
        __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
        for (int j = 0; j < 12; j++) acc[j] = _mm512_dpbf16_ps(acc[j], xb, (__m512bh)_mm512_loadu_si512((const void*)(w + j * blockStride + p * 16)));
    }
    for (int j = 0; j < 12; j++) _mm512_storeu_ps(y + 16 * j, acc[j]);
}

static void packed_linear(const Matrix* a, const uint16_t* xs, int nrows, float* y, int64_t b0, int64_t b1)
{
    if (nrows == 1) /* one row: 12 blocks of 16 features stream at once, as the 1-2-row tiles of today do */
    {
        int64_t pairs = a->k / 2, stride = pairs * 16;
        int64_t b = b0;
        for (; b + 12 <= b1; b += 12) packed_row12(xs, a->packed + b * stride, pairs, stride, y + b * 16);
        for (; b < b1; b += NR)
        {
            int nr = (int)(b1 - b < NR ? b1 - b : NR);
            packed_tile(1, nr, xs, a->k, a->packed + b * stride, pairs, stride, y + b * 16, 0);
        }
        return;
    }
    int64_t pairs = a->k / 2, stride = pairs * 16, ldy = (a->n + 15) / 16 * 16;
    for (int64_t b = b0; b < b1; b += NR)
    {
        int nr = (int)(b1 - b < NR ? b1 - b : NR);
        for (int m = 0; m < nrows; m += MR)
        {
            int mr = nrows - m < MR ? nrows - m : MR;
            if (mr == MR && nr == NR) packed_tile_full(xs + m * a->k, a->k, a->packed + b * stride, pairs, stride, y + m * ldy + b * 16, ldy);
            else packed_tile(mr, nr, xs + m * a->k, a->k, a->packed + b * stride, pairs, stride, y + m * ldy + b * 16, ldy);
        }
    }
}

static void run_pieces(void)
{
    int p;
    const Matrix* a = &mats[current];
    while ((p = __sync_fetch_and_add(&next_piece, 1)) < PIECES)
    {
        if (mode == 0)
        {
            int64_t blocks = (a->n + 5) / 6, n0 = blocks * p / PIECES * 6, n1 = blocks * (p + 1) / PIECES * 6;
            n0 = n0 < a->n ? n0 : a->n;
            n1 = n1 < a->n ? n1 : a->n;
            if (n1 > n0) k2_linear_bf16(x, rows, a->k, a->w, a->k, a->k, NULL, y_current, a->n, 0, n0, n1, K2_ISA_AVX512BF16);
        }
        else
        {
            int64_t blocks = (a->n + 15) / 16, groups = (blocks + NR - 1) / NR;
            int64_t b0 = groups * p / PIECES * NR, b1 = groups * (p + 1) / PIECES * NR;
            b1 = b1 < blocks ? b1 : blocks;
            if (b1 > b0) packed_linear(a, x, rows, y_packed, b0, b1);
        }
    }
}

static void* worker(void* unused)
{
    (void)unused;
    for (;;)
    {
        pthread_barrier_wait(&barrier);
        run_pieces();
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void product(int which, int matrix)
{
    mode = which;
    current = matrix;
    next_piece = 0;
    pthread_barrier_wait(&barrier);
    run_pieces();
    pthread_barrier_wait(&barrier);
}

static double pass(int which)
{
    double t0 = now_ms();
    for (int i = 0; i < count; i++) product(which, i);
    return now_ms() - t0;
}

static int by_value(const void* a, const void* b)
{
    double u = *(const double*)a, v = *(const double*)b;
    return u < v ? -1 : u > v;
}

int main(int argc, char** argv)
{
    if (argc < 2 || k2_best_isa() != K2_ISA_AVX512BF16)
    {
        fprintf(stderr, "usage: packed_probe ROWS [ROUNDS] (needs AVX512-BF16)\n");
        return 2;
    }
    rows = atoi(argv[1]);
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    if (rows < 1 || rows > 256 || rounds < 1 || rounds > 64) return 2;
    const int64_t shapes[4][2] = {{6144, 2048}, {2048, 2048}, {8192, 2048}, {2048, 8192}}; /* q/k/v, out_proj, fc1, fc2 */
    for (int layer = 0; layer < 24; layer++)
        for (int i = 0; i < 4; i++) mats[count++] = (Matrix){shapes[i][0], shapes[i][1], NULL, NULL};
    mats[count++] = (Matrix){65037, 2048, NULL, NULL}; /* lm_head */
    double bytes = 0;
    fprintf(stderr, "packing %d matrices…\n", count);
    for (int i = 0; i < count; i++)
    {
        Matrix* a = &mats[i];
        a->w = aligned_alloc(64, (size_t)((a->n * a->k * 2 + 63) / 64 * 64));
        for (int64_t j = 0; j < a->n * a->k; j++) a->w[j] = f32_to_bf16((float)((j * 7919 + i) % 2001 - 1000) / 1000.0f);
        a->packed = pack(a->w, a->n, a->k);
        bytes += (double)a->n * a->k * 2;
    }
    x = aligned_alloc(64, (size_t)rows * 8192 * 2);
    for (int i = 0; i < rows * 8192; i++) x[i] = f32_to_bf16((float)(i % 13 - 6) / 7.0f);
    y_packed = aligned_alloc(64, (size_t)rows * 65040 * 4);
    y_current = aligned_alloc(64, (size_t)rows * 65040 * 2);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);

    /* Accuracy against float64 (fc1 of layer 0: K = 2048) and a row's bits alone vs among the others. */
    const Matrix* fc1 = &mats[2];
    product(1, 2);
    double worst = 0;
    for (int m = 0; m < rows; m++)
        for (int64_t n = 0; n < fc1->n; n += 97)
        {
            double exact = 0, magnitude = 0;
            for (int64_t k = 0; k < fc1->k; k++)
            {
                double t = (double)bf16_to_f32(x[m * fc1->k + k]) * bf16_to_f32(fc1->w[n * fc1->k + k]);
                exact += t;
                magnitude += fabs(t);
            }
            double error = fabs(y_packed[m * 8192 + n] - exact) / magnitude;
            worst = error > worst ? error : worst;
        }
    float last[8192];
    memcpy(last, y_packed + (rows - 1) * 8192, sizeof last);
    float alone[8192];
    packed_linear(fc1, x + (rows - 1) * fc1->k, 1, alone, 0, fc1->n / 16);
    int same = memcmp(last, alone, sizeof last) == 0;
    printf("fc1 error / sum |products|: worst %.2e (float32 unit 6.0e-08); last row alone %s\n", worst, same ? "same bits" : "DIFFERS");

    double times[2][64];
    for (int r = 0; r <= rounds; r++)
        for (int i = 0; i < 2; i++)
        {
            int which = (i + r) % 2; /* rounds rotate which goes first */
            double t = pass(which);
            if (r > 0) times[which][r - 1] = t;
            else fprintf(stderr, "warm-up %s: %.1f ms\n", which ? "packed" : "current", t);
        }
    double median[2];
    for (int which = 0; which < 2; which++)
    {
        qsort(times[which], (size_t)rounds, sizeof(double), by_value);
        median[which] = times[which][rounds / 2];
    }
    double flops = 2.0 * bytes / 2 * rows;
    printf("weights: %.2f GB, %d rows, %d rounds\n", bytes / 1e9, rows, rounds);
    printf("products_current_ms: %.1f ms\n", median[0]);
    printf("products_packed_ms: %.1f ms\n", median[1]);
    printf("products_current_gflops: %.0f GFLOP/s\n", flops / median[0] / 1e6);
    printf("products_packed_gflops: %.0f GFLOP/s\n", flops / median[1] / 1e6);
    printf("current_over_packed: %.2f x\n", median[0] / median[1]);
    printf("packed_row_alone_same_bits: %d bool\n", same);
    return 0;
}
