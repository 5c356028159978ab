/* The line search's fields for a tanh net with two or more hidden layers, for pinnbench's fast path
 * (pinnbench/core/native.py): each (candidate, tile of points) item runs the whole Taylor forward pass with every
 * layer's components in L1, instead of eager torch's batched products and about nine elementwise passes per
 * layer through memory.
 *
 * pinnbench_deep_line_fields: the fields at θ - η d for a batch of step sizes η.
 * Inputs (float64, C-contiguous):
 *   widths   (depth + 1,) int64: d_in = dim, h_1, ..., h_L, 1 (L >= 2 hidden layers);
 *   thetas   (nb, P) the candidates θ - η d, in MLP's layout (per layer W (out x in, row-major), then b);
 *   y0, dy   (h_1, m) the first layer's sigmoid arguments -2(W0 x + b0) at θ and -2(dW0 x + db0) along d,
 *            so candidate c's are y0 - η_c dy (the first layer's products are shared by all candidates);
 *   etas     (nb,);
 *   lap_mask (dim,) 1 on the Laplacian's coordinates, 0 elsewhere.
 * Outputs: u (nb, m), grad (nb, dim, m), lap (nb, m).
 *
 * Each neuron carries K = dim + 2 components (value, gradient, partial Laplacian). With a = tanh z and
 * s1 = 1 - a² = 4 q (1 - q), q = sigmoid(-2z) (sigmoid.h; 1 - q is formed from the same division, without
 * cancellation), a layer maps z to (a, s1 ∇z, s1 (Δz - 2 a Σ_lap z_k²)); neuron j of the first layer has ∇z = W0's
 * row j and Δz = 0. Each (candidate, tile) item is computed by one thread in a fixed order, so the result does not
 * depend on the thread count.
 */
#include <stdint.h>
#include <stdlib.h>

#include "sigmoid.h"

#define TILE 16 /* points per item; a multiple of 8 */
#define ROWS 4  /* output neurons per register block of a layer's product */

typedef double lanes __attribute__((vector_size(64))); /* 8 doubles */

typedef struct {
    int64_t depth, m, dim, nb, tiles, width_max, n_params;
    const int64_t *widths;
    const double *thetas, *y0, *dy, *etas, *lap_mask;
    double *u, *grad, *lap;
} job_t;

/* z (n_out, len) = w (n_out, n_in) h (n_in, len), len a multiple of 8, h and z 64-byte aligned. */
static void product(int64_t n_out, int64_t n_in, int64_t len, const double *w, const double *h, double *z) {
    int64_t i = 0;
    for (; i + ROWS <= n_out; i += ROWS) {
        const double *w0 = w + i * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
        for (int64_t e = 0; e < len; e += 8) {
            lanes a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t j = 0; j < n_in; j++) {
                const lanes x = *(const lanes *)(h + j * len + e);
                a0 += w0[j] * x;
                a1 += w1[j] * x;
                a2 += w2[j] * x;
                a3 += w3[j] * x;
            }
            *(lanes *)(z + i * len + e) = a0;
            *(lanes *)(z + (i + 1) * len + e) = a1;
            *(lanes *)(z + (i + 2) * len + e) = a2;
            *(lanes *)(z + (i + 3) * len + e) = a3;
        }
    }
    for (; i < n_out; i++)
        for (int64_t e = 0; e < len; e += 8) {
            lanes a = {0};
            for (int64_t j = 0; j < n_in; j++) a += w[i * n_in + j] * *(const lanes *)(h + j * len + e);
            *(lanes *)(z + i * len + e) = a;
        }
}

/* a = tanh z and s1 = 1 - a² for len points from t = 2z (the sigmoid's t = -y, y = -2z). len is a parameter,
 * not the constant TILE: with a constant trip count gcc unrolled the sigmoid's loop instead of vectorising it
 * (the search ran 17 ms instead of 11 on allen_cahn, one thread). */
static void tanh_parts(const double *t, int64_t len, double *a, double *s1) {
    double num[BLOCK], pos[BLOCK];
    block_t kbits, scale;
    for (int64_t i = 0; i < len; i++) sigmoid_parts_at(t[i], i, num, pos, &kbits);
    sigmoid_scales(&kbits, len, &scale);
    for (int64_t i = 0; i < len; i++) {
        const double rest = scale.d[i] * pos[i], inverse = 1.0 / (num[i] + rest);
        const double q = num[i] * inverse, q_rest = rest * inverse; /* q and 1 - q */
        a[i] = q_rest - q;
        s1[i] = 4.0 * q * q_rest;
    }
}

static void item(const job_t *job, int64_t index, double *h, double *z) {
    const int64_t dim = job->dim, k_last = dim + 1, len = (dim + 2) * TILE, m = job->m;
    const int64_t c = index / job->tiles, i0 = (index % job->tiles) * TILE;
    const int64_t valid = m - i0 < TILE ? m - i0 : TILE;
    const double eta = job->etas[c];
    const int64_t n1 = job->widths[1];
    const double *params = job->thetas + c * job->n_params;
    double t[TILE], a[TILE], s1[TILE];
    for (int64_t j = 0; j < n1; j++) {
        const double *y0 = job->y0 + j * m + i0, *dy = job->dy + j * m + i0;
        for (int64_t i = 0; i < TILE; i++) t[i] = i < valid ? eta * dy[i] - y0[i] : 0.0;
        tanh_parts(t, TILE, a, s1);
        double c_j = 0.0;
        for (int64_t k = 0; k < dim; k++) c_j += job->lap_mask[k] * params[j * dim + k] * params[j * dim + k];
        c_j *= -2.0;
        double *h_j = h + j * len;
        for (int64_t i = 0; i < TILE; i++) {
            h_j[i] = a[i];
            h_j[k_last * TILE + i] = (a[i] * c_j) * s1[i];
        }
        for (int64_t k = 0; k < dim; k++) {
            const double w_jk = params[j * dim + k];
            for (int64_t i = 0; i < TILE; i++) h_j[(1 + k) * TILE + i] = s1[i] * w_jk;
        }
    }
    int64_t offset = n1 * (dim + 1); /* where the next layer's W starts in the candidate's θ */
    for (int64_t l = 1; l + 1 < job->depth; l++) { /* the other hidden layers */
        const int64_t n_in = job->widths[l], n_out = job->widths[l + 1];
        const double *w = params + offset, *b = w + n_out * n_in;
        product(n_out, n_in, len, w, h, z);
        for (int64_t j = 0; j < n_out; j++) {
            double *z_j = z + j * len, *h_j = h + j * len;
            for (int64_t i = 0; i < TILE; i++) t[i] = 2.0 * (z_j[i] + b[j]);
            tanh_parts(t, TILE, a, s1);
            double sq[TILE] = {0};
            for (int64_t k = 0; k < dim; k++)
                if (job->lap_mask[k] != 0.0)
                    for (int64_t i = 0; i < TILE; i++) sq[i] += z_j[(1 + k) * TILE + i] * z_j[(1 + k) * TILE + i];
            for (int64_t i = 0; i < TILE; i++) {
                h_j[i] = a[i];
                h_j[k_last * TILE + i] = s1[i] * (z_j[k_last * TILE + i] - 2.0 * a[i] * sq[i]);
            }
            for (int64_t k = 0; k < dim; k++)
                for (int64_t i = 0; i < TILE; i++) h_j[(1 + k) * TILE + i] = s1[i] * z_j[(1 + k) * TILE + i];
        }
        offset += n_out * (n_in + 1);
    }
    const int64_t n_in = job->widths[job->depth - 1];
    const double *w = params + offset, b = w[n_in];
    product(1, n_in, len, w, h, z);
    for (int64_t i = 0; i < valid; i++) {
        job->u[c * m + i0 + i] = z[i] + b;
        job->lap[c * m + i0 + i] = z[k_last * TILE + i];
    }
    for (int64_t k = 0; k < dim; k++)
        for (int64_t i = 0; i < valid; i++) job->grad[(c * dim + k) * m + i0 + i] = z[(1 + k) * TILE + i];
}

/* Returns 0, or -1 when a thread could not allocate its buffers (the outputs are then incomplete). Built with
 * OpenMP, the items are shared by ``threads`` threads of the process's OpenMP runtime: inside torch that is torch's
 * own libgomp (the same soname, loaded first), whose workers are already awake after torch's last parallel op;
 * built without, the pragmas are ignored and the caller computes every item. */
int64_t pinnbench_deep_line_fields(int64_t depth, int64_t m, int64_t dim, const int64_t *widths, const double *thetas,
                                   const double *y0, const double *dy, const double *etas, int64_t nb,
                                   const double *lap_mask, double *u, double *grad, double *lap, int64_t threads) {
    int64_t width_max = 1, n_params = 0;
    for (int64_t l = 1; l < depth; l++) width_max = widths[l] > width_max ? widths[l] : width_max;
    for (int64_t l = 0; l < depth; l++) n_params += widths[l + 1] * (widths[l] + 1);
    const job_t job = {depth, m, dim, nb, (m + TILE - 1) / TILE, width_max, n_params, widths, thetas, y0, dy, etas,
                       lap_mask, u, grad, lap};
    const size_t bytes = (size_t)(width_max * (dim + 2) * TILE) * sizeof(double);
    int64_t failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads < 1 ? 1 : threads) reduction(| : failed)
    {
        double *h = aligned_alloc(64, bytes), *z = aligned_alloc(64, bytes);
        failed |= !h || !z;
#pragma omp for schedule(static)
        for (int64_t index = 0; index < nb * job.tiles; index++)
            if (h && z) item(&job, index, h, z);
        free(h);
        free(z);
    }
    return failed ? -1 : 0;
}
