/* Fused kernels of a one-hidden-layer tanh net u(x) = w·tanh(W0 x + b0) + b, for pinnbench's fast path
 * (pinnbench/core/native.py): one pass per (neuron, point) that stays in registers and L1 instead of eager
 * torch's passes through memory.
 *
 * pinnbench_line_fields: the fields at θ - η d for a batch of step sizes η (the line search's inner loop).
 * Inputs (float64, C-contiguous):
 *   y0, dy  (n, m)  sigmoid arguments -2(W0 x + b0) at θ and -2(dW0 x + db0) along d, so y(η) = y0 - η dy;
 *   etas    (nb,)   the step sizes;
 *   au      (nb, n) u coefficients of q = sigmoid(y) (-2 w(η));      cu (nb,) u's constant (b(η) + Σ w(η));
 *   ag      (nb, dim, n) gradient coefficients of g = q(1-q) (4 w0(η)ᵀ ⊙ w(η));
 *   ah      (nb, n) Laplacian coefficients of h = g(1-2q) (-8 Σ_lap w0(η)² ⊙ w(η)).
 * Outputs: u (nb, m), grad (nb, dim, m), lap (nb, m), for the candidates [begin, end).
 *
 * The sigmoid is sigmoid.h's (one division per value). Each candidate is computed by one caller thread
 * in a fixed order ([begin, end) lets a caller split the batch).
 */
#include <stddef.h>
#include <stdint.h>

#include "sigmoid.h"

#define MAX_DIM 16

/* pinnbench_one_hidden_jacobian: the residual Jacobian's rows of W0, b0 and w, Jᵀ (P, m), from the output
 * cotangents ubar (dim + 2, m) = (dr/du, dr/dgrad_1..dim, dr/dlap) of a pointwise residual, the hand-derived
 * reverse of the Taylor pass with a = tanh z, s1 = 1 - a², s2 = -2 a s1, s3 = s1 (6a² - 2) (derivatives.py,
 * _reverse_one_hidden, is the same computation in torch):
 *   t = Σ_k W0[j,k] ubar_grad_k, e = c_j ubar_lap with c_j = Σ_{k in lap} W0[j,k]²,
 *   Jᵀ[w_j] = a ubar_u + s1 t + s2 e,   Jᵀ[b0_j] = z̄ = w_j (s1 ubar_u + s2 t + s3 e),
 *   Jᵀ[W0_jk] = z̄ x_k + w_j s1 ubar_grad_k + 2 w_j s2 W0[j,k] ubar_lap [k in lap].
 * lap_mask (dim,) is 1 for the Laplacian's coordinates and 0 elsewhere; rows_* are the first rows of the
 * W0 block (row j·dim + k), of b0 and of w in Jᵀ. */

/* q = sigmoid(y0 - eta dy) for one block of points (dy NULL: q = sigmoid(y0)). */
static void sigmoid_parts(const double *y0, const double *dy, double eta, int64_t len, double *num,
                          double *pos, block_t *kbits) {
    if (dy)
        for (int64_t i = 0; i < len; i++) sigmoid_parts_at(eta * dy[i] - y0[i], i, num, pos, kbits);
    else
        for (int64_t i = 0; i < len; i++) sigmoid_parts_at(-y0[i], i, num, pos, kbits);
}

void pinnbench_line_fields(int64_t n, int64_t m, int64_t dim, const double *y0, const double *dy,
                           const double *etas, const double *au, const double *cu, const double *ag,
                           const double *ah, double *u, double *grad, double *lap, int64_t begin, int64_t end) {
    double num[BLOCK], pos[BLOCK], gb[BLOCK], acc_u[BLOCK], acc_l[BLOCK], acc_g[MAX_DIM][BLOCK];
    block_t kbits, scale;
    for (int64_t c = begin; c < end; c++) {
        const double eta = etas[c];
        const double *au_c = au + c * n, *ah_c = ah + c * n, *ag_c = ag + c * dim * n;
        for (int64_t i0 = 0; i0 < m; i0 += BLOCK) {
            const int64_t len = m - i0 < BLOCK ? m - i0 : BLOCK;
            for (int64_t i = 0; i < len; i++) {
                acc_u[i] = 0.0;
                acc_l[i] = 0.0;
            }
            for (int64_t k = 0; k < dim; k++)
                for (int64_t i = 0; i < len; i++) acc_g[k][i] = 0.0;
            for (int64_t j = 0; j < n; j++) {
                sigmoid_parts(y0 + j * m + i0, dy + j * m + i0, eta, len, num, pos, &kbits);
                sigmoid_scales(&kbits, len, &scale);
                const double a_u = au_c[j], a_h = ah_c[j];
                for (int64_t i = 0; i < len; i++) {
                    double q = num[i] / (num[i] + scale.d[i] * pos[i]);
                    double g = q - q * q;
                    double h = g - 2.0 * q * g;
                    acc_u[i] += a_u * q;
                    acc_l[i] += a_h * h;
                    gb[i] = g;
                }
                for (int64_t k = 0; k < dim; k++) {
                    const double a_g = ag_c[k * n + j];
                    for (int64_t i = 0; i < len; i++) acc_g[k][i] += a_g * gb[i];
                }
            }
            for (int64_t i = 0; i < len; i++) {
                u[c * m + i0 + i] = acc_u[i] + cu[c];
                lap[c * m + i0 + i] = acc_l[i];
            }
            for (int64_t k = 0; k < dim; k++)
                for (int64_t i = 0; i < len; i++) grad[(c * dim + k) * m + i0 + i] = acc_g[k][i];
        }
    }
}

void pinnbench_one_hidden_jacobian(int64_t n, int64_t m, int64_t dim, const double *y0, const double *w0,
                                   const double *w, const double *lap_mask, const double *xt,
                                   const double *ubar, double *jt, int64_t rows_w0, int64_t rows_b0,
                                   int64_t rows_w) {
    double num[BLOCK], pos[BLOCK];
    block_t kbits, scale;
    const double *bar_u = ubar, *bar_lap = ubar + (dim + 1) * m;
    for (int64_t j = 0; j < n; j++) {
        const double *w0_j = w0 + j * dim;
        const double w_j = w[j];
        double c_j = 0.0;
        for (int64_t k = 0; k < dim; k++) c_j += lap_mask[k] * w0_j[k] * w0_j[k];
        double *jt_w = jt + (rows_w + j) * m, *jt_b0 = jt + (rows_b0 + j) * m, *jt_w0 = jt + (rows_w0 + j * dim) * m;
        for (int64_t i0 = 0; i0 < m; i0 += BLOCK) {
            const int64_t len = m - i0 < BLOCK ? m - i0 : BLOCK;
            sigmoid_parts(y0 + j * m + i0, NULL, 0.0, len, num, pos, &kbits);
            sigmoid_scales(&kbits, len, &scale);
            double s1w[BLOCK], s2w[BLOCK], tb[BLOCK];
            for (int64_t i = 0; i < len; i++) tb[i] = 0.0;
            for (int64_t k = 0; k < dim; k++) {
                const double *bar_k = ubar + (1 + k) * m + i0;
                for (int64_t i = 0; i < len; i++) tb[i] += w0_j[k] * bar_k[i];
            }
            for (int64_t i = 0; i < len; i++) {
                const double q = num[i] / (num[i] + scale.d[i] * pos[i]);
                const double a = 1.0 - 2.0 * q;
                const double s1 = 1.0 - a * a, s2 = -2.0 * a * s1, s3 = s1 * (6.0 * a * a - 2.0);
                const double t = tb[i];
                const double e = c_j * bar_lap[i0 + i], u_bar = bar_u[i0 + i];
                jt_w[i0 + i] = (a * u_bar + s1 * t) + s2 * e;
                jt_b0[i0 + i] = w_j * ((s1 * u_bar + s2 * t) + s3 * e);
                s1w[i] = w_j * s1;
                s2w[i] = 2.0 * w_j * s2 * bar_lap[i0 + i];
            }
            for (int64_t k = 0; k < dim; k++) {
                const double *x_k = xt + k * m + i0, *bar_k = ubar + (1 + k) * m + i0, *zb = jt_b0 + i0;
                const double lw = lap_mask[k] * w0_j[k];
                double *out = jt_w0 + k * m + i0;
                for (int64_t i = 0; i < len; i++) out[i] = (zb[i] * x_k[i] + s1w[i] * bar_k[i]) + s2w[i] * lw;
            }
        }
    }
}

/* pinnbench_line_coefficients: the per-candidate coefficients pinnbench_line_fields takes, for the candidates
 * θ - η d of a one-hidden-layer net: with W0(η) = W0 - η dW0 (n, dim), w(η) = w - η dw (n), b(η) = b - η db,
 * au = -2 w(η), cu = b(η) + Σ w(η), ag[k] = 4 W0(η)[:, k] ⊙ w(η), ah = -8 (Σ_{k in lap} W0(η)[:, k]²) ⊙ w(η).
 * lap_mask (dim,) is 1 on the Laplacian's coordinates. */
void pinnbench_line_coefficients(int64_t n, int64_t dim, int64_t nb, const double *etas, const double *w0,
                                 const double *dw0, const double *w, const double *dw, const double *b,
                                 const double *db, const double *lap_mask, double *au, double *cu, double *ag,
                                 double *ah) {
    for (int64_t c = 0; c < nb; c++) {
        const double eta = etas[c];
        double sum_w = 0.0;
        for (int64_t j = 0; j < n; j++) {
            const double w_j = w[j] - eta * dw[j];
            double c_j = 0.0;
            for (int64_t k = 0; k < dim; k++) {
                const double w0_jk = w0[j * dim + k] - eta * dw0[j * dim + k];
                ag[(c * dim + k) * n + j] = 4.0 * w0_jk * w_j;
                c_j += lap_mask[k] * w0_jk * w0_jk;
            }
            au[c * n + j] = -2.0 * w_j;
            ah[c * n + j] = -8.0 * c_j * w_j;
            sum_w += w_j;
        }
        cu[c] = (b[0] - eta * db[0]) + sum_w;
    }
}
