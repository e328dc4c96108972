/* Counter-based random numbers (splitmix64). A generator is a pure function of (seed, stream), so a
 * sample's augmentation does not depend on which thread draws it or in which order. */
#include <math.h>

#include "cvision/transforms.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void cv_rng_init(cv_rng *rng, uint64_t seed, uint64_t stream)
{
    rng->state = mix64(mix64(seed + 0x9E3779B97F4A7C15ULL) ^ (stream * 0xD1B54A32D192ED03ULL));
}

uint64_t cv_rng_next(cv_rng *rng)
{
    rng->state += 0x9E3779B97F4A7C15ULL;
    return mix64(rng->state);
}

double cv_rng_uniform(cv_rng *rng)
{
    return (double)(cv_rng_next(rng) >> 11) * 0x1.0p-53;
}

double cv_rng_range(cv_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * cv_rng_uniform(rng);
}

int64_t cv_rng_randint(cv_rng *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo + 1) return lo;
    uint64_t range = (uint64_t)(hi - lo), limit = UINT64_MAX - UINT64_MAX % range, x;
    do x = cv_rng_next(rng);
    while (x >= limit); /* rejection keeps every value equally likely */
    return lo + (int64_t)(x % range);
}

double cv_rng_normal(cv_rng *rng)
{
    double u1 = 1.0 - cv_rng_uniform(rng), u2 = cv_rng_uniform(rng); /* u1 in (0, 1] */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Marsaglia and Tsang's method; shape < 1 via the boost Gamma(a) = Gamma(a + 1) * U^(1/a). */
double cv_rng_gamma(cv_rng *rng, double shape)
{
    if (shape <= 0) return 0;
    if (shape < 1)
        return cv_rng_gamma(rng, shape + 1) * pow(1.0 - cv_rng_uniform(rng), 1.0 / shape);
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = cv_rng_normal(rng), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = 1.0 - cv_rng_uniform(rng);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

double cv_rng_beta(cv_rng *rng, double a, double b)
{
    double x = cv_rng_gamma(rng, a), y = cv_rng_gamma(rng, b);
    return x + y > 0 ? x / (x + y) : 0.5;
}
