/* cvision npy FILE [--json] [--save OUT]: dtype, shape and value summary of a .npy array; --save
 * writes it back out as cvision writes arrays (the same bytes np.save writes). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

static double element(const cv_tensor *t, size_t i)
{
    switch (t->dtype) {
    case CV_F32:
        return ((const float *)t->data)[i];
    case CV_F64:
        return ((const double *)t->data)[i];
    case CV_F16:
        return half_to_double(((const uint16_t *)t->data)[i]);
    case CV_I64:
        return (double)((const int64_t *)t->data)[i];
    case CV_I32:
        return ((const int32_t *)t->data)[i];
    case CV_I16:
        return ((const int16_t *)t->data)[i];
    case CV_I8:
        return ((const int8_t *)t->data)[i];
    case CV_U8:
    case CV_BOOL:
        return ((const uint8_t *)t->data)[i];
    default:
        return NAN;
    }
}

int cmd_npy(cv_ctx *ctx, int argc, char **argv)
{
    const char *in = NULL, *save = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--save") && i + 1 < argc)
            save = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: cvision npy FILE.npy [--json] [--save OUT.npy]\n"
                   "Prints a .npy array's dtype, shape, min, max, mean and sum.\n");
            return 0;
        } else if (argv[i][0] == '-' || in) {
            cv_fail(ctx, CV_ERR_INVALID, "npy: unexpected argument '%s'", argv[i]);
            return cli_error(ctx);
        } else
            in = argv[i];
    }
    if (!in) {
        cv_fail(ctx, CV_ERR_INVALID, "npy: no input file (usage: cvision npy FILE.npy)");
        return cli_error(ctx);
    }
    cv_tensor *t;
    if (cv_npy_load(ctx, in, &t)) return cli_error(ctx);
    size_t n = (size_t)cv_tensor_numel(t);
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double v = element(t, i);
        mn = fmin(mn, v);
        mx = fmax(mx, v);
        sum += v;
    }
    if (save && cv_npy_save(ctx, save, t)) {
        cv_tensor_free(t);
        return cli_error(ctx);
    }
    char sb[200];
    if (json) {
        cJSON *o = cJSON_CreateObject(), *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddStringToObject(o, "dtype", cv_dtype_name(t->dtype));
        cJSON_AddNumberToObject(o, "size", (double)n);
        if (n) {
            cJSON_AddNumberToObject(o, "min", mn);
            cJSON_AddNumberToObject(o, "max", mx);
            cJSON_AddNumberToObject(o, "mean", sum / (double)n);
        }
        cJSON_AddNumberToObject(o, "sum", sum);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("%s %s %s", in, cv_dtype_name(t->dtype),
               cv_shape_str(t->ndim, t->shape, sb, sizeof sb));
        if (n) printf(" min %.9g max %.9g mean %.9g", mn, mx, sum / (double)n);
        printf("\n");
    }
    cv_tensor_free(t);
    return 0;
}
