/* Learning-rate schedules in closed form. PyTorch's schedulers are recursive (each step multiplies
 * the previous lr); the closed forms here are the same functions and differ by rounding only.
 * torchvision's reference steps its scheduler once per epoch, so the epoch-wise schedules ignore
 * the step within the epoch; OneCycleLR is stepped per batch. */
#include "cvision/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cv_sched_default(cv_sched *s)
{
    memset(s, 0, sizeof *s);
    s->kind = CV_SCHED_CONSTANT;
    s->epochs = 1;
    s->warmup_decay = 0.01;
    s->step_size = 30;
    s->gamma = 0.1;
    s->pct_start = 0.3;
    s->div_factor = 25;
    s->final_div_factor = 1e4;
    s->cycle_momentum = 1;
    s->base_momentum = 0.85;
    s->max_momentum = 0.95;
}

static const char *const kinds[] = {"constant", "step", "multistep", "cosine", "onecycle"};

static cv_status num(cv_ctx *ctx, const char *name, const char *v, double *out)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || !isfinite(d))
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: --%s needs a number, got '%s'", name,
                       v ? v : "");
    *out = d;
    return CV_OK;
}

static cv_status integer(cv_ctx *ctx, const char *name, const char *v, int *out)
{
    double d;
    cv_status s = num(ctx, name, v, &d);
    if (s) return s;
    if (d != floor(d) || d < 0 || d > 1e9)
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: --%s needs an integer >= 0, got '%s'", name,
                       v);
    *out = (int)d;
    return CV_OK;
}

static cv_status boolean(cv_ctx *ctx, const char *name, const char *v, int *out)
{
    if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = 1;
    } else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) {
        *out = 0;
    } else {
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: --%s takes 0 or 1, got '%s'", name, v);
    }
    return CV_OK;
}

cv_status cv_sched_set(cv_ctx *ctx, cv_sched *s, const char *name, const char *v)
{
    if (!strcmp(name, "sched")) {
        for (int i = 0; i < (int)(sizeof kinds / sizeof *kinds); i++)
            if (v && !strcmp(v, kinds[i])) {
                s->kind = (cv_sched_kind)i;
                return CV_OK;
            }
        return cv_fail(ctx, CV_ERR_INVALID,
                       "schedule: unknown schedule '%s' (constant, step, multistep, cosine, "
                       "onecycle)",
                       v ? v : "");
    }
    if (!strcmp(name, "epochs")) return integer(ctx, name, v, &s->epochs);
    if (!strcmp(name, "warmup")) return integer(ctx, name, v, &s->warmup_epochs);
    if (!strcmp(name, "warmup-decay")) return num(ctx, name, v, &s->warmup_decay);
    if (!strcmp(name, "warmup-method")) {
        if (v && (!strcmp(v, "linear") || !strcmp(v, "constant"))) {
            s->warmup_constant = !strcmp(v, "constant");
            return CV_OK;
        }
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: --warmup-method is linear or constant");
    }
    if (!strcmp(name, "step-size")) return integer(ctx, name, v, &s->step_size);
    if (!strcmp(name, "gamma")) return num(ctx, name, v, &s->gamma);
    if (!strcmp(name, "milestones")) {
        s->n_milestones = 0;
        for (const char *p = v ? v : ""; *p;) {
            char *end;
            long m = strtol(p, &end, 10);
            if (end == p || (*end && *end != ',') || m < 0 || m > 1000000000L)
                return cv_fail(ctx, CV_ERR_INVALID,
                               "schedule: --milestones wants epochs like 30,60,90, got '%s'", v);
            if (s->n_milestones == CV_SCHED_MAX_MILESTONES)
                return cv_fail(ctx, CV_ERR_INVALID, "schedule: more than %d milestones",
                               CV_SCHED_MAX_MILESTONES);
            s->milestones[s->n_milestones++] = (int)m;
            p = *end ? end + 1 : end;
        }
        return CV_OK;
    }
    if (!strcmp(name, "lr-min")) return num(ctx, name, v, &s->eta_min);
    if (!strcmp(name, "pct-start")) return num(ctx, name, v, &s->pct_start);
    if (!strcmp(name, "div-factor")) return num(ctx, name, v, &s->div_factor);
    if (!strcmp(name, "final-div-factor")) return num(ctx, name, v, &s->final_div_factor);
    if (!strcmp(name, "anneal")) {
        if (v && (!strcmp(v, "cos") || !strcmp(v, "linear"))) {
            s->anneal_linear = !strcmp(v, "linear");
            return CV_OK;
        }
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: --anneal is cos or linear");
    }
    if (!strcmp(name, "three-phase")) return boolean(ctx, name, v, &s->three_phase);
    if (!strcmp(name, "cycle-momentum")) return boolean(ctx, name, v, &s->cycle_momentum);
    if (!strcmp(name, "base-momentum")) return num(ctx, name, v, &s->base_momentum);
    if (!strcmp(name, "max-momentum")) return num(ctx, name, v, &s->max_momentum);
    return cv_fail(ctx, CV_ERR_NOT_FOUND, "schedule: unknown option --%s", name);
}

static int is_bool_opt(const char *name)
{
    return !strcmp(name, "three-phase") || !strcmp(name, "cycle-momentum");
}

cv_status cv_sched_parse(cv_ctx *ctx, const char *spec, cv_sched *s)
{
    char *buf = strdup(spec ? spec : "");
    if (!buf) return cv_fail(ctx, CV_ERR_NOMEM, "schedule: out of memory");
    char *save = NULL, *tok = strtok_r(buf, " \t\n", &save);
    cv_status st = CV_OK;
    int first = 1;
    while (tok && !st) {
        char *next = strtok_r(NULL, " \t\n", &save);
        if (strncmp(tok, "--", 2)) {
            if (!first) {
                st = cv_fail(ctx, CV_ERR_INVALID, "schedule '%s': unexpected '%s'", spec, tok);
                break;
            }
            st = cv_sched_set(ctx, s, "sched", tok);
        } else {
            char *name = tok + 2, *eq = strchr(name, '=');
            const char *value = NULL;
            if (eq) {
                *eq = 0;
                value = eq + 1;
            } else if (next && (!is_bool_opt(name) || strncmp(next, "--", 2))) {
                value = next;
                next = strtok_r(NULL, " \t\n", &save);
            }
            if (!value && !is_bool_opt(name))
                st = cv_fail(ctx, CV_ERR_INVALID, "schedule: --%s needs a value", name);
            else
                st = cv_sched_set(ctx, s, name, value);
        }
        first = 0;
        tok = next;
    }
    free(buf);
    return st;
}

cv_status cv_sched_validate(cv_ctx *ctx, const cv_sched *s)
{
    if ((unsigned)s->kind > CV_SCHED_ONECYCLE)
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: unknown kind %d", (int)s->kind);
    if (s->epochs < 1) return cv_fail(ctx, CV_ERR_INVALID, "schedule: epochs must be >= 1");
    if (s->warmup_epochs < 0 || s->warmup_epochs > s->epochs)
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: warmup of %d epochs for %d epochs",
                       s->warmup_epochs, s->epochs);
    if (s->warmup_epochs > 0 && !(s->warmup_decay > 0 && s->warmup_decay <= 1))
        return cv_fail(ctx, CV_ERR_INVALID, "schedule: --warmup-decay must be in (0, 1]");
    switch (s->kind) {
    case CV_SCHED_STEP:
        if (s->step_size < 1)
            return cv_fail(ctx, CV_ERR_INVALID, "schedule: --step-size must be >= 1");
        break;
    case CV_SCHED_MULTISTEP:
        for (int i = 1; i < s->n_milestones; i++)
            if (s->milestones[i] <= s->milestones[i - 1])
                return cv_fail(ctx, CV_ERR_INVALID, "schedule: milestones must increase");
        break;
    case CV_SCHED_COSINE:
        if (s->epochs - s->warmup_epochs < 1)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "schedule: cosine needs more epochs (%d) than warmup epochs (%d)",
                           s->epochs, s->warmup_epochs);
        break;
    case CV_SCHED_ONECYCLE:
        if (s->warmup_epochs)
            return cv_fail(ctx, CV_ERR_INVALID,
                           "schedule: onecycle has its own warm-up (--pct-start); drop --warmup");
        if (!(s->pct_start >= 0 && s->pct_start <= 1) || !(s->div_factor > 0) ||
            !(s->final_div_factor > 0))
            return cv_fail(ctx, CV_ERR_INVALID,
                           "schedule: onecycle needs pct_start in [0, 1] and positive div factors");
        break;
    default:
        break;
    }
    return CV_OK;
}

/* OneCycleLR's phase arithmetic at step t; returns the anneal fraction and the phase's ends. */
static void onecycle_phase(const cv_sched *s, double t, double total, int *phase, double *pct)
{
    double ends[3];
    int n;
    if (s->three_phase) {
        ends[0] = s->pct_start * total - 1;
        ends[1] = 2 * s->pct_start * total - 2;
        ends[2] = total - 1;
        n = 3;
    } else {
        ends[0] = s->pct_start * total - 1;
        ends[1] = total - 1;
        n = 2;
    }
    double start = 0;
    for (int i = 0; i < n; i++) {
        if (t <= ends[i] || i == n - 1) {
            *phase = i;
            /* PyTorch divides by zero here (a phase of length 0); take the phase's end value */
            *pct = ends[i] != start ? (t - start) / (ends[i] - start) : 1.0;
            return;
        }
        start = ends[i];
    }
}

static double anneal(const cv_sched *s, double a, double b, double pct)
{
    if (s->anneal_linear) return (b - a) * pct + a;
    return b + (a - b) / 2.0 * (cos(M_PI * pct) + 1);
}

double cv_sched_lr(const cv_sched *s, double base_lr, int64_t epoch, int64_t step,
                   int64_t steps_per_epoch)
{
    if (s->kind == CV_SCHED_ONECYCLE) {
        double initial = base_lr / s->div_factor, min = initial / s->final_div_factor;
        int phase;
        double pct;
        onecycle_phase(s, (double)(epoch * steps_per_epoch + step),
                       (double)s->epochs * (double)steps_per_epoch, &phase, &pct);
        if (s->three_phase)
            return phase == 0   ? anneal(s, initial, base_lr, pct)
                   : phase == 1 ? anneal(s, base_lr, initial, pct)
                                : anneal(s, initial, min, pct);
        return phase == 0 ? anneal(s, initial, base_lr, pct) : anneal(s, base_lr, min, pct);
    }
    int64_t w = s->warmup_epochs;
    if (epoch < w)
        return base_lr * (s->warmup_constant ? s->warmup_decay
                                             : s->warmup_decay + (1 - s->warmup_decay) *
                                                                     (double)epoch / (double)w);
    int64_t m = epoch - w; /* the main schedule starts at the end of warmup (SequentialLR) */
    switch (s->kind) {
    case CV_SCHED_STEP:
        return base_lr * pow(s->gamma, (double)(m / s->step_size));
    case CV_SCHED_MULTISTEP: {
        int k = 0;
        while (k < s->n_milestones && s->milestones[k] <= m) k++;
        return base_lr * pow(s->gamma, k);
    }
    case CV_SCHED_COSINE: {
        double t_max = (double)(s->epochs - w);
        return s->eta_min + (base_lr - s->eta_min) * (1 + cos(M_PI * (double)m / t_max)) / 2;
    }
    default:
        return base_lr;
    }
}

double cv_sched_momentum(const cv_sched *s, int64_t epoch, int64_t step, int64_t steps_per_epoch)
{
    if (s->kind != CV_SCHED_ONECYCLE || !s->cycle_momentum) return NAN;
    int phase;
    double pct, hi = s->max_momentum, lo = s->base_momentum;
    onecycle_phase(s, (double)(epoch * steps_per_epoch + step),
                   (double)s->epochs * (double)steps_per_epoch, &phase, &pct);
    if (s->three_phase)
        return phase == 0 ? anneal(s, hi, lo, pct) : phase == 1 ? anneal(s, lo, hi, pct) : hi;
    return phase == 0 ? anneal(s, hi, lo, pct) : anneal(s, lo, hi, pct);
}
