/* The sigmoid of pinnbench's compiled kernels (one_hidden.c, deep_line.c): sigmoid(y) = 1/(1 + e^t), t = -y,
 * through the range reduction t = k ln2 + r, |r| <= ln2/2, and the rational form
 * e^r = (Q(r²) + r P(r²)) / (Q(r²) - r P(r²)) of the Cephes library's exp (S. L. Moshier, public domain), so
 * q = (Q - rP) / ((Q - rP) + 2^k (Q + rP)) costs one division. t is clamped to [-708, 708] (q then differs from
 * the exact value by less than 1e-307); NaN propagates. */
#ifndef PINNBENCH_SIGMOID_H
#define PINNBENCH_SIGMOID_H
#include <stdint.h>

#define BLOCK 64

typedef union {
    double d[BLOCK];
    int64_t i[BLOCK];
} block_t;

static const double LOG2E = 1.4426950408889634074;
static const double LN2_HI = 6.93145751953125e-1;
static const double LN2_LO = 1.42860682030941723212e-6;
static const double SHIFT = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer in the low bits */
static const double MAX_T = 708.0;
static const double P0 = 1.26177193074810590878e-4, P1 = 3.02994407707441961300e-2,
                    P2 = 9.99999999999999999910e-1;
static const double Q0 = 3.00198505138664455042e-6, Q1 = 2.52448340349684104192e-3,
                    Q2 = 2.27265548208155028766e-1, Q3 = 2.00000000000000000009e0;

/* The parts of q = sigmoid(y) = 1/(1 + e^t), t = -y, at entry i of a block: the numerator, the factor of 2^k
 * and k's bits (q = num / (num + 2^k pos)). */
static inline void sigmoid_parts_at(double t, int64_t i, double *num, double *pos, block_t *kbits) {
    t = t > MAX_T ? MAX_T : t;
    t = t < -MAX_T ? -MAX_T : t;
    double k = t * LOG2E + SHIFT;
    kbits->d[i] = k;
    k -= SHIFT;
    const double r = (t - k * LN2_HI) - k * LN2_LO;
    const double rr = r * r;
    const double p = r * ((P0 * rr + P1) * rr + P2);
    const double q = ((Q0 * rr + Q1) * rr + Q2) * rr + Q3;
    num[i] = q - p;
    pos[i] = q + p;
}

/* 2^k from the bits sigmoid_parts_at left in kbits, for the first len entries. */
static inline void sigmoid_scales(const block_t *kbits, int64_t len, block_t *scale) {
    const int64_t shift_bits = 0x4338000000000000LL; /* the bits of SHIFT */
    for (int64_t i = 0; i < len; i++) scale->i[i] = (kbits->i[i] - shift_bits + 1023) << 52;
}

#endif
