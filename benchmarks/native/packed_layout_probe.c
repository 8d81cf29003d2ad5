/*
 * Probe: the decoder's bf16 products with the weights packed for vdpbf16ps (k2_linear_packed_bf16: pairs of k
 * interleaved across 16 output features, activations broadcast) against the kernels over the weights as stored
 * (k2_linear_bf16: 4 x 6 tiles of 16 k-lanes folded per element), side by side on the decoder's 2.68 GB of weight
 * shapes, 2 threads, interleaved rounds. It measured the packed layout before the library had it; it stays to
 * re-measure the two on another machine.
 *
 *   gcc -O3 -ffp-contract=off -pthread -I libs/Kosmos2.Kernels/native -o /tmp/packed_probe \
 *       benchmarks/native/packed_layout_probe.c -lm && /tmp/packed_probe ROWS [ROUNDS]
 *
 * Needs AVX512-BF16 (exits otherwise). It prints the packed product's largest difference from a float64 reference and
 * checks that a row has the same bits alone and among the others. Last lines: `name: value unit`.
 */
#include "k2kernels.c"
#include <pthread.h>
#include <stdio.h>
#include <time.h>

enum { PIECES = 8 };

typedef struct { int64_t n, k; uint16_t* w; uint16_t* packed; } Matrix;

static Matrix mats[128];
static int count, rows;
static uint16_t* x;
static float* y_packed;
static uint16_t* y_current;
static int mode, current;
static volatile int next_piece;
static pthread_barrier_t barrier;

/* Packed product of groups [g0, g1), float32 out (row stride n). */
static void packed_linear(const Matrix* a, const uint16_t* xs, int nrows, float* y, int64_t g0, int64_t g1)
{
    k2_linear_packed_bf16(xs, nrows, a->k, a->packed, a->k, NULL, y, a->n, 1, g0, g1, K2_ISA_AVX512BF16);
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
            int64_t groups = a->n / 16, tiles = (groups + 2) / 3; /* piece boundaries on the 3-group tiles, as Bf16Kernels */
            int64_t g0 = tiles * p / PIECES * 3, g1 = tiles * (p + 1) / PIECES * 3;
            g0 = g0 < groups ? g0 : groups;
            g1 = g1 < groups ? g1 : groups;
            if (g1 > g0) packed_linear(a, x, rows, y_packed, g0, g1);
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
    mats[count++] = (Matrix){65040, 2048, NULL, NULL}; /* lm_head (65,037 rounded up to whole groups of 16) */
    double bytes = 0;
    fprintf(stderr, "packing %d matrices…\n", count);
    for (int i = 0; i < count; i++)
    {
        Matrix* a = &mats[i];
        a->w = aligned_alloc(64, (size_t)((a->n * a->k * 2 + 63) / 64 * 64));
        for (int64_t j = 0; j < a->n * a->k; j++) a->w[j] = f32_to_bf16((float)((j * 7919 + i) % 2001 - 1000) / 1000.0f);
        a->packed = aligned_alloc(64, (size_t)((a->n * a->k * 2 + 63) / 64 * 64));
        memcpy(a->packed, a->w, (size_t)(a->n * a->k * 2));
        if (k2_pack_bf16(a->packed, a->n, a->k, 0) != 0) return 1;
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
